import Logging
import NATSKit
import RampartModels
import RateLimitKit
import ServiceKit
import ServiceLifecycle
import SwiftProtobuf

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// AUTH-10: follows `rampart.events.mail.>` and sends each message once, with the account token
/// it opens from the request (`MailTokens`: sealed to this sender, for this request, by the
/// service whose subject it came on; anything else is a dead letter). A transient failure (a
/// 4xx reply, a server down, TLS failing) is tried again after the configured waits; a permanent
/// one (5xx, an unknown template, an address that is not one) or the last failed attempt goes
/// to the dead letters (`rampart.mail.dead`, stream `RAMPART_MAIL_DEAD`) with the reason. Sent
/// event IDs are remembered for a week (bucket `rampart_mail_sent`), so a redelivered event is
/// not sent again; each address gets at most the `mail_recipient` policy's mails of each kind
/// (rate-limit), so a reset form cannot flood a mailbox, nor notices crowd out resets.
struct MailSender: Service {
    let settings: MailSettings
    let transport: any MailTransport
    let templates: MailTemplates
    let jetStream: JetStream
    let rateLimit: RateLimitClient
    let health: HealthChecks
    let logger: Logger

    static let sentBucket = "rampart_mail_sent"
    static let deadSubject = "rampart.mail.dead"
    static let deadStream = JetStream.StreamConfiguration(
        name: "RAMPART_MAIL_DEAD",
        subjects: [deadSubject],
        maxAge: .seconds(30 * 24 * 3600),
        duplicateWindow: .seconds(120),
        maxMessageSize: 64 * 1024
    )

    func run() async throws {
        // The build step made the bucket; mail goes out once the service serves.
        await health.waitUntilStarted()
        let sent = try await jetStream.keyValue(Self.sentBucket)
        await followEvents(jetStream, "mail-sender", Subjects.MailEvents.all, health: health, logger: logger) { message in
            await handle(message, sent: sent)
        }
    }

    enum Outcome: Equatable {
        case sent, duplicate
        case dropped(String)
        case retry(String)
        case dead(String)
    }

    func handle(_ message: JetStreamMessage, sent: KeyValueBucket) async {
        guard let request = try? Rampart_V1_MailRequest(serializedBytes: message.payload) else {
            logger.error("unreadable mail request dropped", metadata: ["subject": "\(message.subject)"])
            try? message.terminate()
            return
        }
        let key = "event." + MailMessage.idToken(request.eventID)
        let publisher = Subjects.MailEvents.publisher(of: message.subject)
        let outcome = await deliver(request, publisher: publisher, attempt: Int(message.deliveryCount), sent: sent, key: key)
        let metadata: Logger.Metadata = ["event": "\(request.eventID)", "template": "\(request.template)", "to": "\(request.to)"]
        switch outcome {
        case .sent:
            logger.info("mail sent", metadata: metadata)
            _ = try? await sent.put(key, Array("sent".utf8))
            try? await message.ack()
        case .duplicate:
            try? await message.ack()
        case .dropped(let reason):
            logger.warning("mail not sent: \(reason)", metadata: metadata)
            try? await message.ack()
        case .retry(let reason):
            let wait = settings.retrySeconds[min(Int(message.deliveryCount), settings.retrySeconds.count) - 1]
            logger.warning("mail not sent yet, tried again in \(wait) s: \(reason)", metadata: metadata)
            try? message.nak(delay: .seconds(wait))
        case .dead(let reason):
            logger.error("mail given up: \(reason)", metadata: metadata)
            var headers = NATSHeaders()
            headers["Rampart-Mail-Error"] = String(reason.prefix(500))
            headers["Rampart-Mail-Publisher"] = publisher
            do {
                _ = try await jetStream.publish(message.payload, to: Self.deadSubject, headers: headers, messageID: "dead-" + key)
                try? await message.ack()
            } catch {
                // Not acknowledged: it comes back, and is given up again, once the stream answers.
                logger.error("dead letter not stored", metadata: ["event": "\(request.eventID)", "error": "\(loggable(error))"])
                try? message.nak(delay: .seconds(5))
            }
        }
    }

    /// One attempt of `request`, which came on `publisher`'s subject; `attempt` counts from 1.
    func deliver(_ request: Rampart_V1_MailRequest, publisher: String, attempt: Int, sent: KeyValueBucket, key: String) async -> Outcome {
        do {
            if try await sent.get(key) != nil { return .duplicate }
        } catch {
            return .retry("the sent-mail bucket cannot be read: \(error)")
        }
        guard let to = EmailAddress(request.to), request.to.utf8.count <= 254 else { return .dead("the recipient is not a valid address") }
        guard templates.knows(request.template) else { return .dead("unknown template \(request.template.prefix(32).debugDescription)") }
        let token: String?
        do {
            token = try MailTokens.open(request, publishedBy: publisher, with: settings.tokenKeys)
        } catch {
            // An unknown key is a rotation half-way (auth sealing to a key this replica does not
            // have yet); anything else was never sealed by the publisher for this mail.
            if case .unknownKey = error, attempt <= settings.retrySeconds.count { return .retry(error.description) }
            return .dead(error.description)
        }
        if token == nil, templates.needsToken(request.template) { return .dead("its link needs a sealed token and it carries none") }
        if request.expiresAtMs > 0, request.expiresAtMs < WallClock.milliseconds() { return .dead("its link expired before it could be sent") }
        // Counted once per message, not per attempt.
        if attempt == 1 {
            let call = CallContext(principal: Principal(service: .mail))
            // Per address and kind of mail: notices cannot use up the budget of resets.
            switch await rateLimit.check(policy: "mail_recipient", key: "\(request.template) \(to)", context: call) {
            case .allowed, .allowedUnchecked: break
            case .refused: return .dropped("this address got the most mails its limit allows; try later")
            case .unavailable(let error): return .retry("the rate limiter is unavailable (\(error.code.name))")
            }
        }
        guard let content = templates.render(request, token: token, publicURL: settings.publicURL) else { return .dead("unknown template") }
        let message = MailMessage(
            from: settings.from,
            fromName: request.tenantName.isEmpty ? settings.fromName : "\(request.tenantName) via \(settings.fromName)",
            to: to,
            toName: request.recipientName,
            subject: content.subject,
            text: content.text,
            html: content.html,
            id: request.eventID,
            date: Date()
        )
        do {
            try await transport.deliver(message)
            return .sent
        } catch let error as SMTPError {
            if error.transient, attempt <= settings.retrySeconds.count { return .retry(error.description) }
            return .dead(error.description)
        } catch {
            if attempt <= settings.retrySeconds.count { return .retry("\(error)") }
            return .dead("\(error)")
        }
    }
}
