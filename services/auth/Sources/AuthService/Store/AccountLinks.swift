import Logging
import NATSKit
import NIOCore
import PostgresNIO
import RampartModels
import ServiceKit
import ServiceLifecycle
import SodiumKit
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
import SwiftProtobuf
#else
import Foundation
#endif

/// Single-use account tokens (AUTH-7 password reset, AUTH-8 email verification): 32 random
/// bytes, base64url, stored as their SHA-256; the token goes to the address alone, queued for
/// the mail sender (AUTH-10) on `rampart.events.mail.auth`, sealed to its key.
struct AccountLinks: Sendable {
    let database: Database
    let jetStream: JetStream
    let mailTokenKey: SealedBox.PublicKey
    let logger: Logger

    enum Purpose: String {
        case passwordReset = "password_reset"
        case emailVerification = "email_verification"

        var seconds: Int { self == .passwordReset ? AuthSettings.passwordResetSeconds : AuthSettings.emailVerificationSeconds }
    }

    func send(_ purpose: Purpose, user: UUID, email: String) async throws {
        let secret = randomBytes(32)
        let expires = WallClock.milliseconds() + Int64(purpose.seconds) * 1000
        let rows = try await database.query(
            """
            WITH token AS (
                INSERT INTO account_tokens (token_hash, purpose, user_id, expires_at)
                VALUES (\(ByteBuffer(bytes: sha256(secret))), \(purpose.rawValue), \(user), to_timestamp(\(Double(expires) / 1000)))
            )
            SELECT name FROM users WHERE id = \(user)
            """
        )
        var mail = Rampart_V1_MailRequest()
        for try await name in rows.decode(String.self) { mail.recipientName = name }
        mail.eventID = UUID().uuidString.lowercased()
        // The purpose's name is the template's.
        mail.template = purpose.rawValue
        mail.to = email
        MailTokens.seal(Base64.encode(secret, variant: Base64.urlSafeNoPadding), into: &mail, by: .auth, to: mailTokenKey)
        mail.expiresAtMs = expires
        mail.occurredAtMs = WallClock.milliseconds()
        _ = try await jetStream.publish(try mail.serializedBytes(), to: Subjects.MailEvents.requested(by: .auth), messageID: mail.eventID)
    }

    /// Spends every open token of `purpose` for `user`: a reset, used or superseded, leaves no
    /// other reset link that works.
    func spendAll(_ purpose: Purpose, of user: UUID, on connection: PostgresConnection) async throws {
        try await connection.query(
            "UPDATE account_tokens SET used_at = now() WHERE user_id = \(user) AND purpose = \(purpose.rawValue) AND used_at IS NULL",
            logger: logger
        )
    }

    /// Spends a token: the user it was for, once, before it expires; nil otherwise.
    func spend(_ token: String, _ purpose: Purpose, on connection: PostgresConnection) async throws -> UUID? {
        guard token.utf8.count <= 64, let secret = Base64.decode(token, variant: Base64.urlSafeNoPadding), secret.count == 32 else { return nil }
        let rows = try await connection.query(
            """
            UPDATE account_tokens SET used_at = now()
            WHERE token_hash = \(ByteBuffer(bytes: sha256(secret))) AND purpose = \(purpose.rawValue) AND used_at IS NULL AND expires_at > now()
            RETURNING user_id
            """,
            logger: logger
        )
        return try await rows.first(decoding: UUID.self)
    }
}

/// Reset links leave after the answer (issue 26, finding 13): a reset request does the same
/// work for a known and an unknown address (its checks, the per-address limit, one lookup), so
/// the time it takes tells nobody which addresses have accounts; the token's write and the
/// mail's publish happen here, in `ResetMailSender`. Bounded: past `capacity` waiting, a request
/// is dropped and logged (the per-address limit makes that a flood, not a person).
final class ResetMailQueue: Sendable {
    static let capacity = 1024
    /// A link that fails this many times (its user gone, say) is given up, logged.
    static let attempts = 5
    private let waiting = Mutex<[(user: UUID, email: String, failures: Int)]>([])
    fileprivate let wake = WakeSignal()

    init() {}

    func enqueue(user: UUID, email: String, failures: Int = 0, logger: Logger) {
        guard failures < Self.attempts else {
            logger.error("reset mail given up after \(failures) failures", metadata: ["user": "\(user)"])
            return
        }
        let queued = waiting.withLock { waiting in
            guard waiting.count < Self.capacity else { return false }
            waiting.append((user, email, failures))
            return true
        }
        if queued { wake.signal() } else { logger.warning("reset mail dropped: the queue is full", metadata: ["user": "\(user)"]) }
    }

    fileprivate func takeAll() -> [(user: UUID, email: String, failures: Int)] {
        waiting.withLock { waiting in
            defer { waiting.removeAll() }
            return waiting
        }
    }
}

/// Sends what `ResetMailQueue` holds, until shutdown; a link that cannot be sent now (NATS or
/// the database away) is tried again.
struct ResetMailSender: Service {
    let queue: ResetMailQueue
    let links: AccountLinks
    /// Whether the account may not get a reset link (SSO-2: its home tenant enforces SSO): asked
    /// here, after the answer, so the request's timing says nothing of the account.
    let withheld: @Sendable (UUID) async throws -> Bool
    let health: HealthChecks
    let logger: Logger

    func run() async throws {
        await repeatUntilShutdown("reset mails", logger: logger) {
            await health.waitUntilStarted()
            while !Task.isCancelled {
                await queue.wake.wait(upTo: .seconds(5))
                let batch = queue.takeAll()
                for (index, mail) in batch.enumerated() {
                    do {
                        if try await withheld(mail.user) {
                            logger.info("reset mail withheld: the account's organization signs in with SSO", metadata: ["user": "\(mail.user)"])
                            continue
                        }
                        try await links.send(.passwordReset, user: mail.user, email: mail.email)
                    } catch {
                        // Back in line, this one and the rest of the batch, before the retry's pause.
                        queue.enqueue(user: mail.user, email: mail.email, failures: mail.failures + 1, logger: logger)
                        for later in batch[(index + 1)...] {
                            queue.enqueue(user: later.user, email: later.email, failures: later.failures, logger: logger)
                        }
                        throw error
                    }
                }
            }
        }
    }
}
