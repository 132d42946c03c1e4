import Logging
import NIOCore
import PostgresNIO
import RampartModels
import ServiceKit
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The global `sso_sign_ins` (SSO-3, SSO-4): each sign-in (or Google link) between its start
/// and the provider's answer. The state and the browser binding are stored as SHA-256 hashes, so
/// the table alone cannot finish anyone's sign-in; a state is spent by the first callback that
/// presents it with its browser's binding.
struct SSOSignInStore: Sendable {
    let database: Database
    let logger: Logger

    static let lifetimeSeconds = 600

    struct Pending: Sendable {
        /// What the answer is for.
        enum Purpose: Sendable, Equatable {
            /// A sign-in through one of the tenant's connections.
            case connection(UUID, tenant: TenantID)
            /// Sign in with Google, to the tenant chosen at the start (nil: the account's home).
            case google(tenant: TenantID?)
            /// A signed-in person, in `tenant`, linking their Google account.
            case linkGoogle(user: UUID, tenant: TenantID)

            /// The tenant the answer concerns, for its audit.
            var tenant: TenantID? {
                switch self {
                case .connection(_, let tenant), .linkGoogle(_, let tenant): tenant
                case .google(let tenant): tenant
                }
            }
        }

        var purpose: Purpose
        var nonce: String
        var codeVerifier: String
        var emailHint: String?
        var returnTo: String
    }

    /// Why a callback's state was not accepted; the raw value is the reason audited.
    enum Refusal: String, Error {
        case unknown = "state_unknown"
        case replayed = "state_replayed"
        case expired = "state_expired"
        case otherBrowser = "state_other_browser"
    }

    func begin(_ pending: Pending, stateHash: [UInt8], browserHash: [UInt8]) async throws {
        // Finished and abandoned sign-ins older than a day go as new ones come.
        try await database.query("DELETE FROM sso_sign_ins WHERE expires_at < now() - interval '1 day'")
        let (purpose, connection, user): (String, UUID?, UUID?) =
            switch pending.purpose {
            case .connection(let id, _): ("sso", id, nil)
            case .google: ("google", nil, nil)
            case .linkGoogle(let user, _): ("google_link", nil, user)
            }
        try await database.query(
            """
            INSERT INTO sso_sign_ins (state_hash, browser_hash, purpose, tenant_id, connection_id, user_id, nonce, code_verifier, email_hint, return_to, expires_at)
            VALUES (\(ByteBuffer(bytes: stateHash)), \(ByteBuffer(bytes: browserHash)), \(purpose), \(pending.purpose.tenant?.hex), \(connection), \(user),
                    \(pending.nonce), \(pending.codeVerifier), \(pending.emailHint), \(pending.returnTo),
                    now() + make_interval(secs => \(Double(Self.lifetimeSeconds))))
            """
        )
    }

    /// Spends the state when it is live and this browser's; otherwise says why not (with the
    /// tenant, when the state is known, for the audit).
    func spend(stateHash: [UInt8], browserHash: [UInt8]) async throws -> Result<Pending, Refusal> {
        let spent = try await database.query(
            """
            UPDATE sso_sign_ins SET used_at = now()
            WHERE state_hash = \(ByteBuffer(bytes: stateHash)) AND browser_hash = \(ByteBuffer(bytes: browserHash))
              AND used_at IS NULL AND expires_at > now()
            RETURNING purpose, tenant_id, connection_id, user_id, nonce, code_verifier, email_hint, return_to
            """
        )
        if let (purpose, tenant, connection, user, nonce, verifier, hint, returnTo) = try await spent.first(
            decoding: (String, String?, UUID?, UUID?, String, String, String?, String).self
        ) {
            let tenant = tenant.flatMap(TenantID.init)
            let found: Pending.Purpose? =
                switch (purpose, tenant, connection, user) {
                case ("sso", let tenant?, let connection?, _): .connection(connection, tenant: tenant)
                case ("google", _, _, _): .google(tenant: tenant)
                case ("google_link", let tenant?, _, let user?): .linkGoogle(user: user, tenant: tenant)
                default: nil
                }
            // The table's check makes the last impossible; a row that still fails is no sign-in.
            guard let found else { return .failure(.unknown) }
            return .success(Pending(purpose: found, nonce: nonce, codeVerifier: verifier, emailHint: hint, returnTo: returnTo))
        }
        let found = try await database.query(
            """
            SELECT used_at IS NOT NULL, expires_at <= now(), browser_hash = \(ByteBuffer(bytes: browserHash))
            FROM sso_sign_ins WHERE state_hash = \(ByteBuffer(bytes: stateHash))
            """
        )
        guard let (used, expired, sameBrowser) = try await found.first(decoding: (Bool, Bool, Bool).self) else { return .failure(.unknown) }
        if used { return .failure(.replayed) }
        if expired { return .failure(.expired) }
        return .failure(sameBrowser ? .unknown : .otherBrowser)
    }

    /// The tenant a state belongs to, for the audit of a refused callback.
    func tenant(stateHash: [UInt8]) async throws -> TenantID? {
        let rows = try await database.query("SELECT tenant_id FROM sso_sign_ins WHERE state_hash = \(ByteBuffer(bytes: stateHash))")
        return try await rows.first(decoding: String?.self).flatMap { $0.flatMap(TenantID.init) }
    }
}
