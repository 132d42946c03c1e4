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

/// API keys (KEY-1..4): created by a member for their tenant and shown once, verified by the
/// gateway on every call that presents one (with a short cache there), rotated with a grace
/// period, revoked at once everywhere.
///
/// A key is `rk_` + 8 characters that name it (the prefix, stored in plaintext so the console
/// can show which key is which) + 43 characters of base64url holding 256 random bits. Only an
/// HMAC-SHA-256 of prefix and secret under the key ring is stored: the secret has too much
/// entropy to guess, so a slow password hash would buy nothing but a quarter second per call,
/// and the key keeps a copy of the database from confirming or planting a key.
extension Sessions {
    static let invalidAPIKey = RampartError(.unauthenticated, "the API key is not valid")
    static let apiKeyHashPurpose = "rampart api key"
    static let apiKeyPrefixAlphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)
    static let apiKeyLength = 11 + 43
    static let apiKeyLimits = (name: 100, scopes: 32, ratePerMinute: UInt32(10_000), expiryDays: UInt32(3650), perMember: 100)
    static let defaultAPIKeyRatePerMinute: UInt32 = 60
    static let defaultRotationGraceSeconds: UInt32 = 86_400
    static let maximumRotationGraceSeconds: UInt32 = 30 * 86_400
    /// KEY-4's reminder: a key older than this is due for rotation.
    static let apiKeyRotationReminderDays = 90

    // MARK: Create, list, revoke, rotate

    func createAPIKey(_ request: Rampart_V1_CreateApiKeyRequest, call: CallContext) async throws -> Rampart_V1_CreateApiKeyReply {
        let (tenant, user) = try caller(call)
        var problems: [(field: String, message: String)] = []
        let name = displayName(request.name, maximum: Self.apiKeyLimits.name)
        if name == nil { problems.append(("name", "1 to \(Self.apiKeyLimits.name) characters, without control characters or direction overrides")) }
        if let problem = try await scopeProblem(request.scopes) { problems.append(("scopes", problem)) }
        let rate = request.rateLimitPerMinute == 0 ? Self.defaultAPIKeyRatePerMinute : request.rateLimitPerMinute
        if rate > Self.apiKeyLimits.ratePerMinute {
            problems.append(("rate_limit_per_minute", "at most \(Self.apiKeyLimits.ratePerMinute) requests a minute"))
        }
        if request.expiresInDays > Self.apiKeyLimits.expiryDays {
            problems.append(("expires_in_days", "at most \(Self.apiKeyLimits.expiryDays) days (0: never)"))
        }
        guard problems.isEmpty, let name else { throw RampartError.invalidFields(problems) }
        _ = try await memberRole(user, tenant: tenant)
        try await requireVerifiedEmail(user, for: "Creating an API key")

        let expiresInSeconds = request.expiresInDays == 0 ? nil : Double(request.expiresInDays) * 86_400
        let made = try await insertAPIKey(tenant: tenant) { connection, key in
            let rows = try await connection.query(
                "SELECT count(*) FROM \(schema: tenant).api_keys WHERE created_by = \(user) AND revoked_at IS NULL",
                logger: logger
            )
            for try await live in rows.decode(Int64.self) where live >= Self.apiKeyLimits.perMember {
                throw RampartError(.failedPrecondition, "you have \(Self.apiKeyLimits.perMember) live API keys: revoke one first")
            }
            return (name, Array(Set(request.scopes)).sorted(), Int(rate), user, expiresInSeconds)
        }
        await audit.record(
            Rampart_V1_AuditEvent(.apiKeyCreated, tenant: tenant, target: ("api_key", made.apiKey.apiKeyID), call: call, service: .auth)
        )
        await notices.send(.apiKeyCreated, to: user, call: call, values: ["key_name": made.apiKey.name, "key_prefix": made.apiKey.prefix])
        return made
    }

    func listAPIKeys(_ request: Rampart_V1_ListApiKeysRequest, call: CallContext) async throws -> Rampart_V1_ListApiKeysReply {
        let (tenant, user) = try caller(call)
        let role = try await memberRole(user, tenant: tenant)
        // Owners and admins see every key of the tenant; a member their own.
        let rows = try await database.query(
            """
            SELECT \(unescaped: Self.apiKeyColumns) FROM \(schema: tenant).api_keys
            WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
              AND (\([.owner, .admin].contains(role) ? nil : user)::uuid IS NULL OR created_by = \([.owner, .admin].contains(role) ? nil : user)::uuid)
              AND (\(Int(request.unusedForDays))::int = 0 OR coalesce(last_used_at, created_at) < now() - make_interval(days => \(Int(request.unusedForDays))::int))
            ORDER BY created_at DESC LIMIT 500
            """
        )
        var reply = Rampart_V1_ListApiKeysReply()
        for try await row in rows.decode(APIKeyRow.self) { reply.apiKeys.append(Self.apiKey(row)) }
        return reply
    }

    func revokeAPIKey(_ request: Rampart_V1_RevokeApiKeyRequest, call: CallContext) async throws -> Rampart_V1_RevokeApiKeyReply {
        let (tenant, user) = try caller(call)
        let id = try Self.apiKeyID(request.apiKeyID)
        let role = try await memberRole(user, tenant: tenant)
        let creator: UUID = try await database.transaction { connection in
            let creator = try await lockManageableKey(id, by: user, role: role, in: tenant, on: connection)
            try await connection.query(
                "UPDATE \(schema: tenant).api_keys SET revoked_at = now(), revoked_reason = 'revoked' WHERE id = \(id)",
                logger: logger
            )
            return creator
        }
        try await recordRevocation(.apiKey, tenant: tenant, id: id, user: creator, reason: "revoked")
        await audit.record(
            Rampart_V1_AuditEvent(.apiKeyRevoked, tenant: tenant, target: ("api_key", id.uuidString.lowercased()), call: call, service: .auth)
        )
        return Rampart_V1_RevokeApiKeyReply()
    }

    /// A new key like the old one; the old one works on for the grace period, then expires.
    func rotateAPIKey(_ request: Rampart_V1_RotateApiKeyRequest, call: CallContext) async throws -> Rampart_V1_CreateApiKeyReply {
        let (tenant, user) = try caller(call)
        let id = try Self.apiKeyID(request.apiKeyID)
        guard request.graceSeconds <= Self.maximumRotationGraceSeconds else {
            throw RampartError.invalidArgument("grace_seconds is at most \(Self.maximumRotationGraceSeconds) (30 days)", field: "grace_seconds")
        }
        let grace = request.graceSeconds == 0 ? Self.defaultRotationGraceSeconds : request.graceSeconds
        let role = try await memberRole(user, tenant: tenant)
        try await requireVerifiedEmail(user, for: "Rotating an API key")
        let made = try await insertAPIKey(tenant: tenant) { connection, key in
            _ = try await lockManageableKey(id, by: user, role: role, in: tenant, on: connection)
            let rows = try await connection.query(
                """
                SELECT name, scopes, rate_limit_per_minute, extract(epoch FROM expires_at - created_at)::float8, replaced_by IS NOT NULL
                FROM \(schema: tenant).api_keys WHERE id = \(id)
                """,
                logger: logger
            )
            for try await (name, scopes, rate, lifetime, replaced) in rows.decode((String, [String], Int, Double?, Bool).self) {
                guard !replaced else { throw RampartError(.failedPrecondition, "this key was rotated already: rotate its successor") }
                // The new key is the rotator's, whose secret it is now (issue 26, finding 13): an
                // admin rotating a member's key gets a key that acts as the admin, bounded by the
                // admin's roles, never one that speaks for the member (or an owner) they rotated.
                return (name, scopes, rate, user, lifetime)
            }
            throw RampartError(.notFound, "no such API key")
        } after: { connection, successor in
            // The old key ends with its grace period (or sooner, if it expired sooner anyway).
            try await connection.query(
                """
                UPDATE \(schema: tenant).api_keys SET replaced_by = \(successor),
                    expires_at = least(coalesce(expires_at, 'infinity'), now() + make_interval(secs => \(Double(grace))))
                WHERE id = \(id)
                """,
                logger: logger
            )
        }
        // Gateways holding the old key in their cache learn when it stops.
        try await recordRevocation(.apiKey, tenant: tenant, id: id, user: user, reason: "rotated", afterSeconds: Int(grace))
        var event = Rampart_V1_AuditEvent(.apiKeyRotated, tenant: tenant, target: ("api_key", id.uuidString.lowercased()), call: call, service: .auth)
        event.reason = "replaced by \(made.apiKey.apiKeyID), grace \(grace) s"
        await audit.record(event)
        return made
    }

    /// Revokes every key `user` created in `tenant` (the member was disabled or removed).
    @discardableResult
    func revokeAPIKeys(createdBy user: UUID, tenant: TenantID, reason: String) async throws -> Int {
        guard try await database.isProvisioned(tenant) else { return 0 }
        let rows = try await database.query(
            """
            UPDATE \(schema: tenant).api_keys SET revoked_at = now(), revoked_reason = \(reason)
            WHERE created_by = \(user) AND revoked_at IS NULL RETURNING id
            """
        )
        var revoked: [UUID] = []
        for try await id in rows.decode(UUID.self) { revoked.append(id) }
        for id in revoked { try await recordRevocation(.apiKey, tenant: tenant, id: id, user: user, reason: reason) }
        return revoked.count
    }

    // MARK: Verify

    /// The gateway's question for a presented key. Every refusal is the same one, and counts
    /// toward a ban of the client's network (RL-3).
    func verifyAPIKey(_ request: Rampart_V1_VerifyApiKeyRequest, call: CallContext) async throws -> Rampart_V1_VerifyApiKeyReply {
        do {
            return try await verifiedAPIKey(request.key, call: call)
        } catch let error as RampartError where error.code == .unauthenticated {
            await rateLimit.reportFailure(.apiKey, context: call)
            throw error
        }
    }

    private func verifiedAPIKey(_ key: String, call: CallContext) async throws -> Rampart_V1_VerifyApiKeyReply {
        guard let (prefix, secret) = Self.parseAPIKey(key) else { throw Self.invalidAPIKey }
        var tenant: TenantID?
        for try await hex in try await database.query("SELECT tenant_id FROM api_key_directory WHERE prefix = \(prefix)")
            .decode(String.self)
        {
            tenant = TenantID(hex)
        }
        guard let tenant, try await database.isProvisioned(tenant) else { throw Self.invalidAPIKey }
        let rows = try await database.query(
            """
            SELECT id, secret_hash, hash_key_id, created_by, scopes, rate_limit_per_minute,
                coalesce((extract(epoch FROM expires_at) * 1000)::bigint, 0),
                revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
            FROM \(schema: tenant).api_keys WHERE prefix = \(prefix)
            """
        )
        var found: (UUID, ByteBuffer, String, UUID, [String], Int, Int64, Bool)?
        for try await row in rows.decode((UUID, ByteBuffer, String, UUID, [String], Int, Int64, Bool).self) { found = row }
        guard let (id, storedHash, hashKeyID, creator, scopes, rate, expiresAtMs, live) = found else { throw Self.invalidAPIKey }
        let presented: [UInt8]
        do {
            presented = try settings.keyEncryption.keyedHash(Array(prefix.utf8) + secret, purpose: Self.apiKeyHashPurpose, keyID: hashKeyID)
        } catch {
            logger.error("an API key's hash key is not in the key ring", metadata: ["tenant": "\(tenant.hex)", "key_id": "\(hashKeyID)"])
            throw Self.invalidAPIKey
        }
        guard constantTimeEquals(presented, Array(buffer: storedHash)), live else { throw Self.invalidAPIKey }
        // The creator's standing now: a key never outlives its creator's membership.
        guard try await activeMember(creator, tenant: tenant) != nil else { throw Self.invalidAPIKey }

        try await database.query(
            "UPDATE \(schema: tenant).api_keys SET last_used_at = now(), last_used_ip = \(call.clientIP) WHERE id = \(id)"
        )
        var reply = Rampart_V1_VerifyApiKeyReply()
        reply.apiKeyID = id.uuidString.lowercased()
        reply.tenantID = tenant.hex
        reply.createdBy = creator.uuidString.lowercased()
        reply.scopes = scopes
        reply.rateLimitPerMinute = UInt32(rate)
        reply.expiresAtMs = expiresAtMs
        return reply
    }

    // MARK: Pieces

    typealias APIKeyRow = (UUID, String, String, [String], UUID, Int64, Int64, Int64, String?, Int, UUID?)
    static let apiKeyColumns = """
        id, name, prefix, scopes, created_by, (extract(epoch FROM created_at) * 1000)::bigint,
        coalesce((extract(epoch FROM expires_at) * 1000)::bigint, 0), coalesce((extract(epoch FROM last_used_at) * 1000)::bigint, 0),
        last_used_ip, rate_limit_per_minute, replaced_by
        """

    static func apiKey(_ row: APIKeyRow) -> Rampart_V1_ApiKey {
        var key = Rampart_V1_ApiKey()
        key.apiKeyID = row.0.uuidString.lowercased()
        key.name = row.1
        key.prefix = row.2
        key.scopes = row.3
        key.createdBy = row.4.uuidString.lowercased()
        key.createdAtMs = row.5
        key.expiresAtMs = row.6
        key.lastUsedAtMs = row.7
        key.lastUsedIp = row.8 ?? ""
        key.rateLimitPerMinute = UInt32(row.9)
        key.replacedBy = row.10?.uuidString.lowercased() ?? ""
        key.rotationDue = WallClock.milliseconds() - row.5 > Int64(apiKeyRotationReminderDays) * 86_400_000
        return key
    }

    static func apiKeyID(_ text: String) throws -> UUID {
        guard let id = UUID(uuidString: text) else { throw RampartError.invalidArgument("api_key_id must be a UUID", field: "api_key_id") }
        return id
    }

    /// What is wrong with `scopes`, if anything: each must be in the scope list, once.
    func scopeProblem(_ scopes: [String]) async throws -> String? {
        guard !scopes.isEmpty, scopes.count <= Self.apiKeyLimits.scopes else { return "1 to \(Self.apiKeyLimits.scopes) scopes" }
        guard Set(scopes).count == scopes.count else { return "each scope once" }
        // Scope names are plain tokens (`boards:read`); anything else, a NUL byte that PostgreSQL
        // would refuse included, is unknown without asking the database.
        if let odd = scopes.first(where: { !Self.isScopeName($0) }) {
            return "unknown scope \(String(odd.prefix(64)).debugDescription): see the scope list (boards:read, boards:write, …)"
        }
        var known = Set<String>()
        let rows = try await database.query("SELECT name FROM api_key_scopes WHERE name = ANY(\(scopes))")
        for try await name in rows.decode(String.self) { known.insert(name) }
        let unknown = scopes.filter { !known.contains($0) }
        guard unknown.isEmpty else {
            return "unknown scope \(String(unknown[0].prefix(64)).debugDescription): see the scope list (boards:read, boards:write, …)"
        }
        return nil
    }

    static func isScopeName(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count)
            && text.utf8.allSatisfy {
                (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x3A || $0 == 0x5F || $0 == 0x2E || $0 == 0x2D
            }
    }

    /// The caller's role in the tenant; only active members handle API keys.
    func memberRole(_ user: UUID, tenant: TenantID) async throws -> Rampart_V1_MemberRole {
        guard let member = try await activeMember(user, tenant: tenant), try await database.isProvisioned(tenant) else {
            throw RampartError(.permissionDenied, "you are not an active member of this tenant")
        }
        return member.role
    }

    /// Locks a live key that `user` may manage (their own; any, for an owner or admin) and
    /// returns its creator. Someone else's key, or another tenant's, is not found.
    func lockManageableKey(
        _ id: UUID,
        by user: UUID,
        role: Rampart_V1_MemberRole,
        in tenant: TenantID,
        on connection: PostgresConnection
    ) async throws
        -> UUID
    {
        let rows = try await connection.query(
            """
            SELECT created_by FROM \(schema: tenant).api_keys
            WHERE id = \(id) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
              AND (\([.owner, .admin].contains(role) ? nil : user)::uuid IS NULL OR created_by = \([.owner, .admin].contains(role) ? nil : user)::uuid)
            FOR UPDATE
            """,
            logger: logger
        )
        for try await creator in rows.decode(UUID.self) { return creator }
        throw RampartError(.notFound, "no such API key")
    }

    /// Makes a key in one transaction: `fields` (inside it) says what the key is; `after` runs
    /// once the row exists. A prefix already taken (about one chance in 10^12) draws again.
    func insertAPIKey(
        tenant: TenantID,
        fields: @escaping (PostgresConnection, UUID) async throws -> (String, [String], Int, UUID, Double?),
        after: @escaping (PostgresConnection, UUID) async throws -> Void = { _, _ in }
    ) async throws -> Rampart_V1_CreateApiKeyReply {
        for attempt in 1...3 {
            let id = UUID()
            let (key, prefix, secret) = Self.newAPIKey()
            let hash = try settings.keyEncryption.keyedHash(Array(prefix.utf8) + secret, purpose: Self.apiKeyHashPurpose)
            do {
                return try await database.transaction { connection in
                    let (name, scopes, rate, creator, lifetime) = try await fields(connection, id)
                    try await connection.query(
                        "INSERT INTO api_key_directory (prefix, tenant_id, api_key_id) VALUES (\(prefix), \(tenant.hex), \(id))",
                        logger: logger
                    )
                    let rows = try await connection.query(
                        """
                        INSERT INTO \(schema: tenant).api_keys
                            (id, prefix, secret_hash, hash_key_id, name, created_by, scopes, rate_limit_per_minute, expires_at)
                        VALUES (\(id), \(prefix), \(ByteBuffer(bytes: hash)), \(settings.keyEncryption.currentKeyID), \(name), \(creator), \(scopes), \(rate), now() + make_interval(secs => \(lifetime)))
                        RETURNING \(unescaped: Self.apiKeyColumns)
                        """,
                        logger: logger
                    )
                    var reply = Rampart_V1_CreateApiKeyReply()
                    for try await row in rows.decode(APIKeyRow.self) { reply.apiKey = Self.apiKey(row) }
                    reply.key = key
                    try await after(connection, id)
                    return reply
                }
            } catch let error as PSQLError where error.sqlState == "23505" && attempt < 3 {
                continue
            }
        }
        throw RampartError(.internal, "no free API key prefix")
    }

    static func newAPIKey() -> (key: String, prefix: String, secret: [UInt8]) {
        var name: [UInt8] = []
        while name.count < 8 {
            // 252 = 7 × 36: bytes above it would favour the first letters.
            for byte in randomBytes(16) where byte < 252 && name.count < 8 { name.append(apiKeyPrefixAlphabet[Int(byte % 36)]) }
        }
        let prefix = "rk_" + String(decoding: name, as: UTF8.self)
        let secret = randomBytes(32)
        return (prefix + Base64.encode(secret, variant: Base64.urlSafeNoPadding), prefix, secret)
    }

    static func parseAPIKey(_ key: String) -> (prefix: String, secret: [UInt8])? {
        let bytes = Array(key.utf8)
        guard bytes.count == apiKeyLength, key.hasPrefix("rk_"), bytes[3..<11].allSatisfy(apiKeyPrefixAlphabet.contains),
            let secret = Base64.decode(String(decoding: bytes[11...], as: UTF8.self), variant: Base64.urlSafeNoPadding), secret.count == 32
        else { return nil }
        return (String(decoding: bytes[..<11], as: UTF8.self), secret)
    }
}
