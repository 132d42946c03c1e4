import NATSKit
import RampartModels
import RateLimitKit
import ServiceKit

/// The sender of outbound mail (AUTH-10): invitations, password resets, address verifications
/// and security notices that the other services queue on `rampart.events.mail.<service>`. It
/// keeps no database: what it remembers (mails sent, dead letters) lives in JetStream.
public enum MailService {
    public static func descriptor(settings: MailSettings) -> ServiceDescriptor {
        ServiceDescriptor(
            name: .mail,
            prepare: { context in
                let jetStream = try context.nats.jetStream()
                // mail owns its dead letters and its sent-mail bucket; it reads tenants' stream.
                try await jetStream.requireStream(Subjects.eventsStream)
                try await jetStream.ensureStream(MailSender.deadStream)
                _ = try await jetStream.ensureKeyValue(.init(bucket: MailSender.sentBucket, ttl: .seconds(7 * 86_400), maxValueSize: 64))
                // Public: what RAMPART_MAIL_TOKEN_PUBLIC_KEY of auth and tenants must be.
                context.logger.notice("account tokens are opened with key", metadata: ["public_key": "\(settings.tokenKeys.currentPublicKey.text)"])
                switch settings.delivery {
                case .smtp(let server):
                    context.logger.notice(
                        "mail goes to the relay",
                        metadata: ["host": "\(server.host)", "port": "\(server.port)", "security": "\(server.security.rawValue)"]
                    )
                case .directory(let folder):
                    context.logger.notice("mail is written to files, not sent (development)", metadata: ["folder": "\(folder)"])
                }
            },
            services: { context in
                let transport: any MailTransport =
                    switch settings.delivery {
                    case .smtp(let server): SMTPTransport(client: try SMTPClient(server: server, heloName: settings.heloName))
                    case .directory(let folder): DirectoryTransport(folder: folder, logger: context.logger)
                    }
                return [
                    MailSender(
                        settings: settings,
                        transport: transport,
                        templates: MailTemplates(),
                        jetStream: try context.nats.jetStream(),
                        rateLimit: RateLimitClient(connection: context.nats),
                        health: context.health,
                        logger: context.logger
                    )
                ]
            }
        )
    }
}
