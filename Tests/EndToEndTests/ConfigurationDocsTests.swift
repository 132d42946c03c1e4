import AuditService
import AuthService
import BackupKit
import Foundation
import GatewayService
import MailService
import RampartModels
import RateLimitService
import ServiceKit
import ServicesTestSupport
import TenantsService
import TestSupport
import Testing
import WebhooksService

@Suite("docs/configuration.md names every variable the services read, and only those")
struct ConfigurationDocsTests {
    /// Every variable a service, the gateway or the backup tools ask for, set or not.
    static func variablesRead() -> Set<String> {
        var reader = EnvironmentReader(environment: [:])
        for service in ServiceName.allCases { _ = ServiceConfiguration(service: service, environment: [:], reader: &reader) }
        _ = AuthSettings(reader: &reader)
        _ = TenantsSettings(reader: &reader)
        _ = AuditSettings(reader: &reader)
        _ = RateLimitSettings(reader: &reader)
        _ = WebhooksSettings(reader: &reader)
        _ = MailSettings(reader: &reader)
        _ = GatewaySettings(reader: &reader)
        _ = BackupSettings(reader: &reader)
        return reader.variablesRead
    }

    /// The variables the first column of the page's tables names (`RAMPART_RATELIMIT_POLICY_<NAME>`
    /// stands for one per policy).
    static func variablesDocumented() throws -> [String] {
        let page = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        return page.split(separator: "\n").filter { $0.hasPrefix("| `RAMPART_") }.flatMap { row in
            let firstCell = row.split(separator: "|")[0]
            return firstCell.split(separator: "`").filter { $0.hasPrefix("RAMPART_") }.map(String.init)
        }
    }

    @Test("each variable read is in the page, each in the page is read")
    func agree() throws {
        let read = Self.variablesRead()
        let documented = try Self.variablesDocumented()
        func isDocumented(_ variable: String) -> Bool {
            documented.contains { name in
                guard let pattern = name.firstRange(of: "<NAME>") else { return name == variable }
                return variable.hasPrefix(name[..<pattern.lowerBound]) && variable.count > pattern.lowerBound.utf16Offset(in: name)
            }
        }
        #expect(read.filter { !isDocumented($0) }.sorted() == [], "read but not in docs/configuration.md")
        let unread = documented.filter { name in
            name.contains("<NAME>") ? !read.contains { isDocumented($0) && $0.hasPrefix(name.prefix { $0 != "<" }) } : !read.contains(name)
        }
        #expect(unread.sorted() == [], "in docs/configuration.md but read by nothing")
        #expect(read.count > 80)
    }
}
