import Logging
import RampartModels

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Where a rendered message goes: a relay over SMTP, or a folder of `.eml` files.
protocol MailTransport: Sendable {
    func deliver(_ message: MailMessage) async throws
}

struct SMTPTransport: MailTransport {
    let client: SMTPClient

    func deliver(_ message: MailMessage) async throws {
        try await client.send(message.rendered(), from: message.from.description, to: message.to.description)
    }
}

/// Development (`make run`): each message becomes `<folder>/<time>-<event>.eml`, which a mail
/// client opens as the person would see it, and a log line names the file.
struct DirectoryTransport: MailTransport {
    let folder: String
    let logger: Logger

    func deliver(_ message: MailMessage) async throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let name = "\(Int64(message.date.timeIntervalSince1970 * 1000))-\(MailMessage.idToken(message.id)).eml"
        let path = folder.hasSuffix("/") ? folder + name : folder + "/" + name
        try Data(message.rendered().utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        logger.notice("mail written (development: not sent)", metadata: ["path": "\(path)", "to": "\(message.to)"])
    }
}
