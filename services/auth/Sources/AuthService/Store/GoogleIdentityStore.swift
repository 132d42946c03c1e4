import Logging
import PostgresNIO
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The global `google_identities` (SSO-4): which account each Google account signs in to, by
/// Google's subject, which never changes (an address can). One each way.
struct GoogleIdentityStore: Sendable {
    let database: Database

    enum Link: Equatable {
        case linked
        /// This Google account was linked to this account already.
        case already
        /// This Google account is another account's.
        case subjectTaken
        /// This account has another Google account.
        case userHasAnother
    }

    /// The account `subject` signs in to.
    func user(subject: String) async throws -> UUID? {
        let rows = try await database.query("SELECT user_id FROM google_identities WHERE subject = \(subject)")
        return try await rows.first(decoding: UUID.self)
    }

    func link(_ subject: String, to user: UUID, email: EmailAddress) async throws -> Link {
        let inserted = try await database.query(
            """
            INSERT INTO google_identities (subject, user_id, email) VALUES (\(subject), \(user), \(email.description))
            ON CONFLICT DO NOTHING RETURNING 1
            """
        )
        if try await inserted.first(decoding: Int32.self) != nil { return .linked }
        switch try await self.user(subject: subject) {
        case user?: return .already
        case .some: return .subjectTaken
        case nil: return .userHasAnother
        }
    }

    /// The sign-in's time, for the person's list of ways in.
    func used(_ subject: String) async throws {
        try await database.query("UPDATE google_identities SET last_used_at = now() WHERE subject = \(subject)")
    }

    func identities(of user: UUID) async throws -> [Rampart_V1_LinkedIdentity] {
        let rows = try await database.query(
            """
            SELECT email, (extract(epoch FROM linked_at) * 1000)::bigint, (extract(epoch FROM last_used_at) * 1000)::bigint
            FROM google_identities WHERE user_id = \(user)
            """
        )
        var found: [Rampart_V1_LinkedIdentity] = []
        for try await (email, linkedAt, lastUsedAt) in rows.decode((String, Int64, Int64).self) {
            var identity = Rampart_V1_LinkedIdentity()
            identity.provider = "google"
            identity.email = email
            identity.linkedAtMs = linkedAt
            identity.lastUsedAtMs = lastUsedAt
            found.append(identity)
        }
        return found
    }

    /// Removes the user's link; the address it had, or nil when there was none.
    func unlink(_ user: UUID) async throws -> String? {
        let rows = try await database.query("DELETE FROM google_identities WHERE user_id = \(user) RETURNING email")
        return try await rows.first(decoding: String.self)
    }
}
