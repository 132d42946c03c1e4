import Logging
import NATSKit
import RampartModels
import RateLimitKit
public import ServiceKit
import SodiumKit

/// The sender of outbound mail (AUTH-10): invitations, password resets, address verifications
/// and security notices that the other services queue on `rampart.events.mail.<service>`. It
/// keeps no database: what it remembers (mails sent, dead letters) lives in JetStream.
public enum MailService {
    public static func descriptor(settings: MailSettings) -> ServiceDescriptor {
        ServiceDescriptor(name: .mail) { context in try await build(context, settings: settings) }
    }

    static func build(_ context: ServiceContext, settings: MailSettings) async throws -> ServiceParts {
        // mail owns its dead letters and its sent-mail bucket; it reads tenants' stream.
        try await context.jetStream.requireStream(Subjects.eventsStream)
        try await context.jetStream.ensureStream(MailSender.deadStream)
        _ = try await context.jetStream.ensureKeyValue(.init(bucket: MailSender.sentBucket, ttl: .seconds(7 * 86_400), maxValueSize: 64))
        // Public: what RAMPART_MAIL_TOKEN_PUBLIC_KEY of auth and tenants must be.
        context.logger.notice("account tokens are opened with key", metadata: ["public_key": "\(settings.tokenKeys.currentPublicKey.text)"])
        let transport: any MailTransport
        switch settings.delivery {
        case .smtp(let server):
            context.logger.notice(
                "mail goes to the relay",
                metadata: ["host": "\(server.host)", "port": "\(server.port)", "security": "\(server.security.rawValue)"]
            )
            do {
                transport = SMTPTransport(client: try SMTPClient(server: server, heloName: settings.heloName))
            } catch {
                // An unreadable CA file: waiting will not fix it.
                throw ConfigurationError(problems: ["RAMPART_MAIL_SMTP_CA cannot be used: \(error)"])
            }
        case .directory(let folder):
            context.logger.notice("mail is written to files, not sent (development)", metadata: ["folder": "\(folder)"])
            transport = DirectoryTransport(folder: folder, logger: context.logger)
        }
        return ServiceParts(services: [
            MailSender(
                settings: settings,
                transport: transport,
                templates: MailTemplates(),
                jetStream: context.jetStream,
                rateLimit: RateLimitClient(connection: context.nats),
                health: context.health,
                logger: context.logger
            )
        ])
    }
}
