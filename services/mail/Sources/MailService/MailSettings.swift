// removingPercentEncoding is Foundation's, not FoundationEssentials'.
import Foundation
public import RampartModels
public import ServiceKit
public import SodiumKit

/// mail's settings, read from `RAMPART_MAIL_*`: exactly one of an SMTP relay and, for
/// development, a directory of `.eml` files. docs/configuration.md lists each variable with its
/// default (`ConfigurationDocsTests` keeps the two in step).
public struct MailSettings: Sendable {
    public enum Delivery: Sendable {
        case smtp(SMTPServer)
        case directory(String)
    }

    public var delivery: Delivery
    public var from: EmailAddress
    public var fromName: String
    public var publicURL: String
    public var retrySeconds: [Int]
    /// Open the account tokens in requests; auth and tenants hold the first one's public key.
    public var tokenKeys: SealedBox.SecretKeys
    /// The name given in EHLO: the sender's domain.
    public var heloName: String { from.domain }

    public init(
        delivery: Delivery,
        from: EmailAddress,
        fromName: String = "Rampart",
        publicURL: String = "http://127.0.0.1:8080",
        retrySeconds: [Int] = [30, 120, 600, 3600, 14400],
        tokenKeys: SealedBox.SecretKeys = try! SealedBox.SecretKeys(parsing: SealedBox.SecretKeys.generate(id: "unset"))
    ) {
        self.delivery = delivery
        self.from = from
        self.fromName = fromName
        self.publicURL = publicURL
        self.retrySeconds = retrySeconds
        self.tokenKeys = tokenKeys
    }

    public init(reader: inout EnvironmentReader) {
        let url = reader.optionalString("mail.smtp-url", secret: true)
        let directory = reader.optionalString("mail.directory")
        let tls = reader.optionalString("mail.smtp-tls")
        let ca = reader.optionalString("mail.smtp-ca")
        var delivery = Delivery.directory(".run/mail")
        switch (url, directory) {
        case (let url?, nil):
            if let server = Self.server(url, tls: tls, ca: ca) {
                delivery = .smtp(server)
            } else {
                reader.problem(
                    "RAMPART_MAIL_SMTP_URL must be smtp://[user:password@]host[:port] or smtps://…, with no path; RAMPART_MAIL_SMTP_TLS starttls or none (smtp:// only)"
                )
            }
        case (nil, let directory?):
            delivery = .directory(directory)
        case (nil, nil):
            reader.problem("set RAMPART_MAIL_SMTP_URL (the relay) or RAMPART_MAIL_DIRECTORY (development: .eml files)")
        case (_?, _?):
            reader.problem("RAMPART_MAIL_SMTP_URL and RAMPART_MAIL_DIRECTORY exclude each other: set one")
        }
        let fromText = reader.optionalString("mail.from")
        let from = fromText.flatMap(EmailAddress.init)
        if from == nil { reader.problem("RAMPART_MAIL_FROM must be the sender's address, e.g. no-reply@example.com") }
        let publicURL = reader.string("mail.public-url", default: "http://127.0.0.1:8080")
        if !Self.isPublicURL(publicURL) { reader.problem("RAMPART_MAIL_PUBLIC_URL must be an http:// or https:// address without spaces") }
        var retries: [Int] = []
        for text in reader.list("mail.retry-seconds", default: ["30", "120", "600", "3600", "14400"]) {
            guard let seconds = Int(text), (1...86_400).contains(seconds) else {
                reader.problem("RAMPART_MAIL_RETRY_SECONDS: \(text.prefix(32)) is not 1 to 86400 seconds")
                continue
            }
            retries.append(seconds)
        }
        if retries.count > 20 { reader.problem("RAMPART_MAIL_RETRY_SECONDS: at most 20 retries") }
        self.init(
            delivery: delivery,
            from: from ?? EmailAddress("no-reply@example.com")!,
            fromName: MailMessage.plain(reader.string("mail.from-name", default: "Rampart")),
            publicURL: publicURL,
            retrySeconds: retries,
            tokenKeys: reader.mailTokenKeys()
        )
    }

    static func server(_ text: String, tls: String?, ca: String?) -> SMTPServer? {
        guard let components = URLComponents(string: text), let scheme = components.scheme, let host = components.host, !host.isEmpty,
            components.path.isEmpty, components.query == nil, components.fragment == nil
        else { return nil }
        let security: SMTPServer.Security
        switch (scheme, tls) {
        case ("smtps", nil): security = .implicitTLS
        case ("smtp", nil), ("smtp", "starttls"): security = .startTLS
        case ("smtp", "none"): security = .none
        default: return nil
        }
        let port = components.port ?? (scheme == "smtps" ? 465 : 587)
        guard (1...65535).contains(port) else { return nil }
        return SMTPServer(
            host: host,
            port: port,
            security: security,
            user: components.user?.removingPercentEncoding,
            password: components.password?.removingPercentEncoding,
            trustedCAFile: ca
        )
    }

    static func isPublicURL(_ text: String) -> Bool {
        (text.hasPrefix("https://") || text.hasPrefix("http://")) && text.utf8.count <= 256
            && !text.unicodeScalars.contains {
                $0.properties.isWhitespace || $0.properties.generalCategory == .control || $0 == "\"" || $0 == "<" || $0 == ">"
            }
    }
}
