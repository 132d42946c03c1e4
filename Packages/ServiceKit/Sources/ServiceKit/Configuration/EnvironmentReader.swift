import Configuration
import RampartModels

/// Reads `RAMPART_*` variables through swift-configuration and collects every missing or invalid
/// one instead of stopping at the first. Keys are dotted (`nats.url` → `RAMPART_NATS_URL`).
public struct EnvironmentReader {
    private let reader: ConfigReader
    public private(set) var problems: [String] = []
    /// Every variable asked for, set or not: docs/configuration.md must name exactly these
    /// (`ConfigurationDocsTests`).
    public private(set) var variablesRead: Set<String> = []

    /// Variables whose values are secrets: swift-configuration redacts them in access logs.
    static let secretKeys: Set<String> = ["RAMPART_NATS_PASSWORD", "RAMPART_POSTGRES_PASSWORD", "RAMPART_AUDIT_SIGNING_KEY"]

    public init(environment: [String: String]) {
        let provider = EnvironmentVariablesProvider(
            environmentVariables: environment,
            secretsSpecifier: .dynamic { key, _ in Self.secretKeys.contains(key) }
        )
        reader = ConfigReader(provider: provider)
    }

    public static func variableName(_ key: String) -> String {
        "RAMPART_" + key.uppercased().map { $0 == "." || $0 == "-" ? "_" : $0 }.map(String.init).joined()
    }

    private mutating func raw(_ key: String, secret: Bool = false) -> String? {
        variablesRead.insert(Self.variableName(key))
        guard let value = reader.string(forKey: ConfigKey("rampart." + key), isSecret: secret) else { return nil }
        return value.isEmpty ? nil : value
    }

    public mutating func string(_ key: String, default defaultValue: String) -> String {
        raw(key) ?? defaultValue
    }

    public mutating func optionalString(_ key: String, secret: Bool = false) -> String? {
        raw(key, secret: secret)
    }

    public mutating func requiredString(_ key: String, secret: Bool = false) -> String {
        guard let value = raw(key, secret: secret) else {
            problems.append("\(Self.variableName(key)) is required")
            return ""
        }
        return value
    }

    public mutating func int(_ key: String, default defaultValue: Int, range: ClosedRange<Int>) -> Int {
        guard let text = raw(key) else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            problems.append(
                "\(Self.variableName(key)) must be an integer from \(range.lowerBound) to \(range.upperBound), not \(text.debugDescription)"
            )
            return defaultValue
        }
        return value
    }

    public mutating func list(_ key: String, default defaultValue: [String]) -> [String] {
        guard let text = raw(key) else { return defaultValue }
        let items = text.split(separator: ",").map { String($0).trimmingWhitespace }.filter { !$0.isEmpty }
        if items.isEmpty { problems.append("\(Self.variableName(key)) is an empty list") }
        return items
    }

    public mutating func choice<T: RawRepresentable & CaseIterable>(_ key: String, default defaultValue: T) -> T where T.RawValue == String {
        guard let text = raw(key) else { return defaultValue }
        guard let value = T(rawValue: text.lowercased()) else {
            let allowed = T.allCases.map(\.rawValue).joined(separator: ", ")
            problems.append("\(Self.variableName(key)) must be one of \(allowed), not \(text.debugDescription)")
            return defaultValue
        }
        return value
    }

    /// Records a problem found by a check the reader cannot express.
    public mutating func problem(_ message: String) {
        problems.append(message)
    }

    public func validate() throws(ConfigurationError) {
        if !problems.isEmpty { throw ConfigurationError(problems: problems) }
    }
}
