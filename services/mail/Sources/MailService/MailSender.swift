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

/// AUTH-10: follows `rampart.events.mail.>` and sends each message once. A transient failure (a
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
        // The bucket exists once the start-up step (prepare) has run.
        await health.waitUntilStarted()
        let sent = try await jetStream.keyValue(Self.sentBucket)
        await followEvents(jetStream, "mail-sender", Subjects.MailEvents.all, health: health, logger: logger) { message in
            await handle(message, sent: sent)
        }
    }

    enum Outcome: Equatable {
        case sent, duplicate, dropped(String), retry(String), dead(String)
    }

    func handle(_ message: JetStreamMessage, sent: KeyValueBucket) async {
        guard let request = try? Rampart_V1_MailRequest(serializedBytes: message.payload) else {
            logger.error("unreadable mail request dropped", metadata: ["subject": "\(message.subject)"])
            try? message.terminate()
            return
        }
        let key = "event." + MailMessage.idToken(request.eventID)
        let outcome = await deliver(request, attempt: Int(message.deliveryCount), sent: sent, key: key)
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
            headers["Rampart-Mail-Publisher"] = String(message.subject.dropFirst(Subjects.eventsPrefix.count + 6))
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

    /// One attempt; `attempt` counts from 1.
    func deliver(_ request: Rampart_V1_MailRequest, attempt: Int, sent: KeyValueBucket, key: String) async -> Outcome {
        do {
            if try await sent.get(key) != nil { return .duplicate }
        } catch {
            return .retry("the sent-mail bucket cannot be read: \(error)")
        }
        guard let to = EmailAddress(request.to), request.to.utf8.count <= 254 else { return .dead("the recipient is not a valid address") }
        guard templates.knows(request.template) else { return .dead("unknown template \(request.template.prefix(32).debugDescription)") }
        if request.expiresAtMs > 0, request.expiresAtMs < WallClock.milliseconds() { return .dead("its link expired before it could be sent") }
        // Counted once per message, not per attempt.
        if attempt == 1 {
            let call = CallContext(principal: "system:mail")
            // Per address and kind of mail: notices cannot use up the budget of resets.
            switch await rateLimit.check(policy: "mail_recipient", key: "\(request.template) \(to)", context: call) {
            case .allowed, .allowedUnchecked: break
            case .refused: return .dropped("this address got the most mails its limit allows; try later")
            case .unavailable(let error): return .retry("the rate limiter is unavailable (\(error.code.name))")
            }
        }
        guard let content = templates.render(request, publicURL: settings.publicURL) else { return .dead("unknown template") }
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
