import Logging
import NATSKit
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
import PostgresNIO
import SwiftProtobuf
#else
import Foundation
#endif

/// AUTH-10's security notices: a mail to the account's own address when something about its
/// security changed, so that its owner learns of what they did not do. Each goes beside the
/// action's audit event, never instead of it; a notice that cannot be queued is logged, and the
/// action stands.
struct SecurityNotices: Sendable {
    let database: Database
    let jetStream: JetStream
    let logger: Logger

    enum Notice: String {
        /// A sign-in from a device and address this account had not signed in from before.
        case newSignIn = "new_sign_in"
        case passwordChanged = "password_changed"
        case mfaDisabled = "mfa_disabled"
        /// MFA turned off by an owner or admin of a tenant (MFA-6).
        case mfaReset = "mfa_reset"
        case apiKeyCreated = "api_key_created"
        /// Wrong second-factor codes, after the right password, locked the second factor.
        case mfaLocked = "mfa_locked"
        /// Someone tried to register a new account with this account's address.
        case registrationAttempted = "registration_attempted"

        /// The template that tells it (`MailTemplates`).
        var template: String { "notice_" + rawValue }
    }

    func send(_ notice: Notice, to user: UUID, call: CallContext, values: [String: String] = [:]) async {
        do {
            let rows = try await database.query("SELECT email, name FROM users WHERE id = \(user) AND status = 'active'")
            var mail = Rampart_V1_MailRequest()
            for try await (email, name) in rows.decode((String, String).self) {
                mail.to = email
                mail.recipientName = name
            }
            guard !mail.to.isEmpty else { return }
            mail.eventID = UUID().uuidString.lowercased()
            mail.template = notice.template
            mail.occurredAtMs = WallClock.milliseconds()
            mail.values = values
            mail.values["ip"] = call.clientIP ?? "unknown"
            mail.values["user_agent"] = String((call.userAgent ?? "unknown").prefix(200))
            _ = try await jetStream.publish(try mail.serializedBytes(), to: Subjects.MailEvents.requested(by: .auth), messageID: mail.eventID)
        } catch {
            logger.warning(
                "security notice not queued",
                metadata: ["notice": "\(notice.rawValue)", "user": "\(user)", "error": "\(loggable(error))"]
            )
        }
    }
}
