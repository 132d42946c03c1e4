import Logging
import RampartModels
import RateLimitKit
import ServiceKit
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// API keys (KEY-1..4): created by a member for their tenant and shown once (`APIKeyFormat`),
/// verified by the gateway on every call that presents one (with a short cache there), rotated
/// with a grace period, revoked at once everywhere (`Revocations`).
struct APIKeyHandlers: Sendable {
    let store: APIKeyStore
    let keyRing: KeyRing
    let memberships: Memberships
    let users: UserStore
    let sessions: SessionStore
    let revocations: Revocations
    let rateLimit: RateLimitClient
    let audit: AuditPublisher
    let notices: SecurityNotices
    let logger: Logger

    static let invalidAPIKey = RampartError(.unauthenticated, "the API key is not valid")
    static let limits = (name: 100, scopes: 32, ratePerMinute: UInt32(10_000), expiryDays: UInt32(3650), perMember: 100)
    static let defaultRatePerMinute: UInt32 = 60
    static let defaultRotationGraceSeconds: UInt32 = 86_400
    static let maximumRotationGraceSeconds: UInt32 = 30 * 86_400

    // MARK: Create, list, revoke, rotate

    func create(_ request: Rampart_V1_CreateApiKeyRequest, call: CallContext) async throws -> Rampart_V1_CreateApiKeyReply {
        let (tenant, user) = try call.signedIn()
        var problems: [(field: String, message: String)] = []
        let name = displayName(request.name, maximum: Self.limits.name)
        if name == nil { problems.append(("name", "1 to \(Self.limits.name) characters, without control characters or direction overrides")) }
        if let problem = try await scopeProblem(request.scopes) { problems.append(("scopes", problem)) }
        let rate = request.rateLimitPerMinute == 0 ? Self.defaultRatePerMinute : request.rateLimitPerMinute
        if rate > Self.limits.ratePerMinute {
            problems.append(("rate_limit_per_minute", "at most \(Self.limits.ratePerMinute) requests a minute"))
        }
        if request.expiresInDays > Self.limits.expiryDays {
            problems.append(("expires_in_days", "at most \(Self.limits.expiryDays) days (0: never)"))
        }
        guard problems.isEmpty, let name else { throw RampartError.invalidFields(problems) }
        _ = try await keyMaker(user, tenant: tenant, session: request.sessionID, doing: "Creating an API key")
        try await users.requireVerifiedEmail(user, for: "Creating an API key")

        let lifetime = request.expiresInDays == 0 ? nil : Double(request.expiresInDays) * 86_400
        let made = try await store.insert(in: tenant) { [store] connection, _ in
            guard try await store.liveCount(createdBy: user, in: tenant, on: connection) < Self.limits.perMember else {
                throw RampartError(.failedPrecondition, "you have \(Self.limits.perMember) live API keys: revoke one first")
            }
            return (name, Array(Set(request.scopes)).sorted(), Int(rate), user, lifetime)
        }
        await audit.record(
            Rampart_V1_AuditEvent(.apiKeyCreated, tenant: tenant, target: ("api_key", made.apiKey.apiKeyID), call: call, service: .auth)
        )
        await notices.send(.apiKeyCreated, to: user, call: call, values: ["key_name": made.apiKey.name, "key_prefix": made.apiKey.prefix])
        return made
    }

    /// Owners and admins see every key of the tenant; a member their own.
    func list(_ request: Rampart_V1_ListApiKeysRequest, call: CallContext) async throws -> Rampart_V1_ListApiKeysReply {
        let (tenant, user) = try call.signedIn()
        let role = try await memberRole(user, tenant: tenant)
        var reply = Rampart_V1_ListApiKeysReply()
        reply.apiKeys = try await store.live(in: tenant, createdBy: role.includes(.admin) ? nil : user, unusedForDays: Int(request.unusedForDays))
        reply.scopes = try await store.scopeList()
        return reply
    }

    func revoke(_ request: Rampart_V1_RevokeApiKeyRequest, call: CallContext) async throws -> Rampart_V1_RevokeApiKeyReply {
        let (tenant, user) = try call.signedIn()
        let id = try Self.apiKeyID(request.apiKeyID)
        let role = try await memberRole(user, tenant: tenant)
        let creator: UUID = try await store.database.transaction { [store] connection in
            let creator = try await store.lockManageable(id, by: user, anyCreator: role.includes(.admin), in: tenant, on: connection)
            try await store.revoke(id, in: tenant, on: connection)
            return creator
        }
        try await revocations.record(.apiKey, tenant: tenant, id: id, user: creator, reason: "revoked")
        await audit.record(
            Rampart_V1_AuditEvent(.apiKeyRevoked, tenant: tenant, target: ("api_key", id.uuidString.lowercased()), call: call, service: .auth)
        )
        return Rampart_V1_RevokeApiKeyReply()
    }

    /// A new key like the old one; the old one works on for the grace period, then expires.
    func rotate(_ request: Rampart_V1_RotateApiKeyRequest, call: CallContext) async throws -> Rampart_V1_CreateApiKeyReply {
        let (tenant, user) = try call.signedIn()
        let id = try Self.apiKeyID(request.apiKeyID)
        guard request.graceSeconds <= Self.maximumRotationGraceSeconds else {
            throw RampartError.invalidArgument("grace_seconds is at most \(Self.maximumRotationGraceSeconds) (30 days)", field: "grace_seconds")
        }
        let grace = request.graceSeconds == 0 ? Self.defaultRotationGraceSeconds : request.graceSeconds
        let role = try await keyMaker(user, tenant: tenant, session: request.sessionID, doing: "Rotating an API key")
        try await users.requireVerifiedEmail(user, for: "Rotating an API key")
        let made = try await store.insert(in: tenant) { [store] connection, _ in
            _ = try await store.lockManageable(id, by: user, anyCreator: role.includes(.admin), in: tenant, on: connection)
            let (name, scopes, rate, lifetime) = try await store.rotationTemplate(id, in: tenant, on: connection)
            // The new key is the rotator's, whose secret it is now (issue 26, finding 13): an admin
            // rotating a member's key gets a key that acts as the admin, bounded by the admin's
            // roles, never one that speaks for the member (or an owner) they rotated.
            return (name, scopes, rate, user, lifetime)
        } after: { [store] connection, successor in
            try await store.replace(id, by: successor, graceSeconds: grace, in: tenant, on: connection)
        }
        // Gateways holding the old key in their cache learn when it stops.
        try await revocations.record(.apiKey, tenant: tenant, id: id, user: user, reason: "rotated", afterSeconds: Int(grace))
        var event = Rampart_V1_AuditEvent(.apiKeyRotated, tenant: tenant, target: ("api_key", id.uuidString.lowercased()), call: call, service: .auth)
        event.reason = "replaced by \(made.apiKey.apiKeyID), grace \(grace) s"
        await audit.record(event)
        return made
    }

    /// Revokes every key `user` created in `tenant` (the member was disabled, removed,
    /// isolated, or reset their password).
    @discardableResult
    func revokeAll(createdBy user: UUID, tenant: TenantID, reason: String) async throws -> Int {
        let revoked = try await store.revokeAll(createdBy: user, in: tenant, reason: reason)
        for id in revoked { try await revocations.record(.apiKey, tenant: tenant, id: id, user: user, reason: reason) }
        return revoked.count
    }

    // MARK: Verify

    /// The gateway's question for a presented key. Every refusal is the same one, and counts
    /// toward a ban of the client's network (RL-3).
    func verify(_ request: Rampart_V1_VerifyApiKeyRequest, call: CallContext) async throws -> Rampart_V1_VerifyApiKeyReply {
        do {
            return try await verified(request.key, call: call)
        } catch let error as RampartError where error.code == .unauthenticated {
            await rateLimit.reportFailure(.apiKey, context: call)
            throw error
        }
    }

    private func verified(_ key: String, call: CallContext) async throws -> Rampart_V1_VerifyApiKeyReply {
        guard let (prefix, secret) = APIKeyFormat.parse(key), let stored = try await store.find(prefix: prefix) else { throw Self.invalidAPIKey }
        let presented: [UInt8]
        do {
            presented = try keyRing.keyedHash(Array(prefix.utf8) + secret, purpose: APIKeyFormat.hashPurpose, keyID: stored.hashKeyID)
        } catch {
            logger.error(
                "an API key's hash key is not in the key ring",
                metadata: ["tenant": "\(stored.tenant.hex)", "key_id": "\(stored.hashKeyID)"]
            )
            throw Self.invalidAPIKey
        }
        guard constantTimeEquals(presented, stored.secretHash), stored.live else { throw Self.invalidAPIKey }
        // The creator's standing now: a key never outlives its creator's membership.
        guard try await memberships.activeMember(stored.creator, tenant: stored.tenant) != nil else { throw Self.invalidAPIKey }

        try await store.markUsed(stored.id, in: stored.tenant, from: call.clientIP)
        var reply = Rampart_V1_VerifyApiKeyReply()
        reply.apiKeyID = stored.id.uuidString.lowercased()
        reply.tenantID = stored.tenant.hex
        reply.createdBy = stored.creator.uuidString.lowercased()
        reply.scopes = stored.scopes
        reply.rateLimitPerMinute = UInt32(stored.ratePerMinute)
        reply.expiresAtMs = stored.expiresAtMs
        return reply
    }

    // MARK: Pieces

    static func apiKeyID(_ text: String) throws -> UUID {
        guard let id = UUID(uuidString: text) else { throw RampartError.invalidArgument("api_key_id must be a UUID", field: "api_key_id") }
        return id
    }

    /// What is wrong with `scopes`, if anything: each must be in the scope list, once.
    func scopeProblem(_ scopes: [String]) async throws -> String? {
        guard !scopes.isEmpty, scopes.count <= Self.limits.scopes else { return "1 to \(Self.limits.scopes) scopes" }
        guard Set(scopes).count == scopes.count else { return "each scope once" }
        let unknown: String?
        if let odd = scopes.first(where: { !APIKeyFormat.isScopeName($0) }) {
            unknown = odd
        } else {
            let known = try await store.knownScopes(scopes)
            unknown = scopes.first { !known.contains($0) }
        }
        guard let unknown else { return nil }
        return "unknown scope \(String(unknown.prefix(64)).debugDescription): see the scope list (boards:read, boards:write, …)"
    }

    /// The role of a member making a key, a credential that outlives their session. SSO-2: where
    /// the tenant enforces SSO, the session must have come through it (`amr` names `sso`), or be
    /// a break-glass owner's; a password session from before the enforcement makes none.
    func keyMaker(_ user: UUID, tenant: TenantID, session: String, doing: String) async throws -> Rampart_V1_MemberRole {
        guard let (member, policies) = try await memberships.activeMemberAndPolicies(user, tenant: tenant),
            try await store.database.isProvisioned(tenant)
        else {
            throw RampartError(.permissionDenied, "you are not an active member of this tenant")
        }
        if !policies.admitsWithoutSSO(user, role: member.role) {
            guard let session = UUID(uuidString: session), let (amr, _) = try await sessions.live(session, user: user, in: tenant),
                amr.contains("sso")
            else { throw Rampart_V1_TenantPolicies.ssoRequired(doing) }
        }
        return member.role
    }

    /// The caller's role in the tenant; only active members handle API keys.
    func memberRole(_ user: UUID, tenant: TenantID) async throws -> Rampart_V1_MemberRole {
        guard let member = try await memberships.activeMember(user, tenant: tenant), try await store.database.isProvisioned(tenant) else {
            throw RampartError(.permissionDenied, "you are not an active member of this tenant")
        }
        return member.role
    }
}
