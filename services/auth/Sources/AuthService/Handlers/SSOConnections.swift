import Logging
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A tenant's SSO connections (SSO-1, SSO-2): made in draft, changed field by field, moved
/// through testing to active. The gateway has checked `sso.manage`. The issuer passes the SSRF
/// guard when it is set, and its discovery document must answer before anyone can sign in
/// through it (testing or active); a connection's domains are ones its tenant verified.
struct SSOConnections: Sendable {
    let store: SSOConnectionStore
    let domains: SSODomainStore
    let providers: ProviderDirectory
    let memberships: Memberships
    let audit: AuditPublisher
    /// What the provider must send people back to: the gateway's callback.
    let redirectURI: String

    static let noSuchConnection = RampartError(.notFound, "no such SSO connection", details: ["field": "connection_id"])

    func create(_ request: Rampart_V1_CreateSsoConnectionRequest, call: CallContext) async throws -> Rampart_V1_SsoConnectionReply {
        let tenant = try await store.database.provisionedTenant(of: call)
        guard let preset = SSOConnection.Preset(rawValue: request.preset) else {
            throw RampartError.invalidArgument("preset must be google, microsoft, okta or oidc", field: "preset")
        }
        let connection = SSOConnection(
            id: UUID(),
            preset: preset,
            issuer: try preset.issuer(given: request.issuer, directory: request.directory),
            clientID: try SSOConnection.checkedClientID(request.clientID),
            domains: try await verified(SSOConnection.checkedDomains(request.domains), in: tenant),
            testUsers: try SSOConnection.checkedTestUsers(request.testUsers),
            state: .draft,
            claimMapping: try SSOConnection.checkedClaimMapping(request.claimMapping),
            trustProviderMFA: request.trustProviderMfa,
            idTokenAlgorithms: try SSOConnection.checkedAlgorithms(request.idTokenAlgorithms)
        )
        let secret = try SSOConnection.checkedClientSecret(request.clientSecret)
        try await callable(connection.issuer)
        let made = try await store.insert(connection, secret: secret, in: tenant)
        await changed("created", before: nil, after: made, tenant: tenant, call: call)
        return reply(made)
    }

    func list(_ request: Rampart_V1_ListSsoConnectionsRequest, call: CallContext) async throws -> Rampart_V1_ListSsoConnectionsReply {
        let tenant = try await store.database.provisionedTenant(of: call)
        var reply = Rampart_V1_ListSsoConnectionsReply()
        reply.connections = try await store.list(in: tenant).map { $0.message(redirectURI: redirectURI) }
        return reply
    }

    func get(_ request: Rampart_V1_SsoConnectionRequest, call: CallContext) async throws -> Rampart_V1_SsoConnectionReply {
        let tenant = try await store.database.provisionedTenant(of: call)
        return reply(try await store.find(try Self.connectionID(request.connectionID), in: tenant).orThrow(Self.noSuchConnection))
    }

    func update(_ request: Rampart_V1_UpdateSsoConnectionRequest, call: CallContext) async throws -> Rampart_V1_SsoConnectionReply {
        let tenant = try await store.database.provisionedTenant(of: call)
        let id = try Self.connectionID(request.connectionID)
        let current = try await store.find(id, in: tenant).orThrow(Self.noSuchConnection)
        for (set, values, field) in [
            (request.setDomains, request.domains, "domains"), (request.setTestUsers, request.testUsers, "test_users"),
            (request.setIDTokenAlgorithms, request.idTokenAlgorithms, "id_token_algorithms"),
        ] where !set && !values.isEmpty {
            throw RampartError.invalidArgument("set set_\(field) to replace \(field)", field: "set_\(field)")
        }
        if !request.setClaimMapping, !request.claimMapping.isEmpty {
            throw RampartError.invalidArgument("set set_claim_mapping to replace claim_mapping", field: "set_claim_mapping")
        }
        // Every field checked, and the provider called, before the row is locked.
        var wanted = current
        if request.hasIssuer { wanted.issuer = try current.preset.issuer(given: request.issuer, directory: "") }
        if request.hasClientID { wanted.clientID = try SSOConnection.checkedClientID(request.clientID) }
        let secret = request.hasClientSecret ? try SSOConnection.checkedClientSecret(request.clientSecret) : nil
        if request.setDomains { wanted.domains = try await verified(SSOConnection.checkedDomains(request.domains), in: tenant) }
        if request.setTestUsers { wanted.testUsers = try SSOConnection.checkedTestUsers(request.testUsers) }
        if request.hasState { wanted.state = try SSOConnection.checkedState(request.state) }
        if request.setClaimMapping { wanted.claimMapping = try SSOConnection.checkedClaimMapping(request.claimMapping) }
        if request.hasTrustProviderMfa { wanted.trustProviderMFA = request.trustProviderMfa }
        if request.setIDTokenAlgorithms { wanted.idTokenAlgorithms = try SSOConnection.checkedAlgorithms(request.idTokenAlgorithms) }
        if wanted.state == .testing, wanted.testUsers.isEmpty {
            throw RampartError.invalidArgument("a connection in testing needs at least one test user", field: "test_users")
        }
        if current.state == .active, wanted.state != .active { try await requireAnotherActive(than: id, in: tenant) }
        if wanted.issuer != current.issuer { try await callable(wanted.issuer) }
        if wanted.state != .draft, wanted.state != current.state || wanted.issuer != current.issuer {
            await providers.forget(issuer: wanted.issuer)
            do {
                _ = try await providers.metadata(issuer: wanted.issuer)
            } catch {
                throw RampartError(
                    .failedPrecondition,
                    "the provider must answer before people sign in through it: \(error)",
                    details: ["field": "issuer"]
                )
            }
        }
        let target = wanted
        let changed = try await store.update(id, in: tenant, secret: secret) { locked in
            // A change made meanwhile by someone else is not overwritten with a stale view.
            guard locked == current else {
                throw RampartError(.conflict, "the connection changed meanwhile: read it again and retry")
            }
            return target
        }
        guard let (before, after) = changed else { throw Self.noSuchConnection }
        if before.issuer != after.issuer { await providers.forget(issuer: before.issuer) }
        await self.changed(secret == nil ? "updated" : "updated, client secret replaced", before: before, after: after, tenant: tenant, call: call)
        return reply(after)
    }

    func delete(_ request: Rampart_V1_SsoConnectionRequest, call: CallContext) async throws -> Rampart_V1_SsoConnectionReply {
        let tenant = try await store.database.provisionedTenant(of: call)
        let id = try Self.connectionID(request.connectionID)
        if try await store.find(id, in: tenant)?.state == .active { try await requireAnotherActive(than: id, in: tenant) }
        let removed = try await store.delete(id, in: tenant).orThrow(Self.noSuchConnection)
        await providers.forget(issuer: removed.issuer)
        await changed("deleted", before: removed, after: nil, tenant: tenant, call: call)
        return reply(removed)
    }

    /// tenants asks before a tenant enforces SSO (SSO-2).
    func status(_ request: Rampart_V1_SsoStatusRequest, call: CallContext) async throws -> Rampart_V1_SsoStatusReply {
        guard call.principal == Principal(service: .tenants) else { throw RampartError(.permissionDenied, "tenants asks this") }
        let tenant = try await store.database.provisionedTenant(of: call)
        var reply = Rampart_V1_SsoStatusReply()
        reply.activeConnections = UInt32(try await store.list(in: tenant).filter { $0.state == .active }.count)
        return reply
    }

    // MARK: Checks

    /// SSO-2: while the tenant enforces SSO, its last active connection stays: without it only
    /// the break-glass owners could sign in.
    func requireAnotherActive(than id: UUID, in tenant: TenantID) async throws {
        guard try await memberships.tenantPolicies(tenant).ssoEnforced else { return }
        guard try await store.list(in: tenant).contains(where: { $0.id != id && $0.state == .active }) else {
            throw RampartError(
                .failedPrecondition,
                "this tenant enforces SSO and this is its only active connection: stop enforcing SSO first, or activate another",
                details: ["field": "state"]
            )
        }
    }

    static func connectionID(_ text: String) throws -> UUID {
        guard text.utf8.count == 36, let id = UUID(uuidString: text) else {
            throw RampartError.invalidArgument("connection_id must be a connection's ID", field: "connection_id")
        }
        return id
    }

    /// The issuer passes the SSRF guard (WH-3) and is https, or http to a network the operator
    /// allowed: checked when it is set, as a webhook's URL is at registration.
    func callable(_ issuer: String) async throws {
        do {
            try await providers.requireSecure(issuer)
        } catch {
            throw RampartError.invalidArgument("issuer: \(error)", field: "issuer")
        }
    }

    /// `domains`, each verified by this tenant (SSO-3): another tenant's, or one not yet proved,
    /// would let the connection claim people it has no right to.
    func verified(_ domains: [String], in tenant: TenantID) async throws -> [String] {
        guard !domains.isEmpty else { return domains }
        let owned = try await self.domains.verified(in: tenant)
        if let missing = domains.first(where: { !owned.contains($0) }) {
            throw RampartError.invalidArgument(
                "\(missing) is not a domain this tenant verified: add it under /v1/tenants/{tenant_id}/domains and verify it first",
                field: "domains"
            )
        }
        return domains
    }

    private func reply(_ connection: SSOConnection) -> Rampart_V1_SsoConnectionReply {
        var reply = Rampart_V1_SsoConnectionReply()
        reply.connection = connection.message(redirectURI: redirectURI)
        return reply
    }

    /// `sso.connection_changed`, with the fields before and after (never the secret).
    private func changed(_ change: String, before: SSOConnection?, after: SSOConnection?, tenant: TenantID, call: CallContext) async {
        let id = (after ?? before)?.id.uuidString.lowercased() ?? ""
        var event = Rampart_V1_AuditEvent(.ssoConnectionChanged, tenant: tenant, target: ("sso_connection", id), call: call, service: .auth)
        event.details["change"] = change
        if let before { event.details["before"] = before.auditSummary }
        if let after { event.details["after"] = after.auditSummary }
        await audit.record(event)
    }
}
