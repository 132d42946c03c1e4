import RampartModels
import ServiceKit
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The domains a tenant proves it owns (SSO-3): claimed, then verified by a TXT record at
/// `_rampart-challenge.<domain>` holding the claim's value. The gateway has checked
/// `sso.manage`. Free mail providers, disposable domains and public suffixes are refused: no
/// organization owns gmail.com's people, nor co.uk.
struct SSODomains: Sendable {
    let store: SSODomainStore
    let connections: SSOConnectionStore
    let records: TXTRecords
    let audit: AuditPublisher

    static let recordPrefix = "_rampart-challenge."
    static let valuePrefix = "rampart-domain-verification="
    static let noSuchDomain = RampartError(.notFound, "this tenant has not claimed that domain", details: ["field": "domain"])
    private static let mailDomains = EmailDomains()

    func add(_ request: Rampart_V1_AddSsoDomainRequest, call: CallContext) async throws -> Rampart_V1_SsoDomainReply {
        let tenant = try await store.database.provisionedTenant(of: call)
        let domain = try Self.checkedDomain(request.domain)
        let challenge = Self.valuePrefix + Base64.encode(randomBytes(24), variant: Base64.urlSafeNoPadding)
        let claim = try await store.claim(domain, challenge: challenge, in: tenant)
        if claim.challenge == challenge { await changed("added", domain, tenant: tenant, call: call) }
        return Self.reply(claim)
    }

    func list(_ request: Rampart_V1_ListSsoDomainsRequest, call: CallContext) async throws -> Rampart_V1_ListSsoDomainsReply {
        let tenant = try await store.database.provisionedTenant(of: call)
        var reply = Rampart_V1_ListSsoDomainsReply()
        reply.domains = try await store.list(in: tenant).map(Self.message)
        return reply
    }

    /// Looks the record up now; a verified domain stays verified.
    func verify(_ request: Rampart_V1_SsoDomainRequest, call: CallContext) async throws -> Rampart_V1_SsoDomainReply {
        let tenant = try await store.database.provisionedTenant(of: call)
        let domain = try Self.checkedDomain(request.domain)
        let claim = try await store.find(domain, in: tenant).orThrow(Self.noSuchDomain)
        guard claim.verifiedAtMs == nil else { return Self.reply(claim) }
        let found: [String]
        do {
            found = try await records.lookup(Self.recordPrefix + domain + ".")
        } catch {
            throw RampartError(.unavailable, "no DNS resolver answered for \(Self.recordPrefix + domain): try again in a moment")
        }
        guard found.contains(claim.challenge) else {
            throw RampartError(
                .failedPrecondition,
                "the TXT record \(Self.recordPrefix + domain) does not hold \(claim.challenge) (yet): publish it, wait for DNS to update, and verify again",
                details: ["field": "domain", "reason": found.isEmpty ? "record_missing" : "record_mismatch"]
            )
        }
        let verified = try await store.markVerified(domain, in: tenant).orThrow(Self.noSuchDomain)
        await changed("verified", domain, tenant: tenant, call: call)
        return Self.reply(verified)
    }

    func remove(_ request: Rampart_V1_SsoDomainRequest, call: CallContext) async throws -> Rampart_V1_SsoDomainReply {
        let tenant = try await store.database.provisionedTenant(of: call)
        let domain = try Self.checkedDomain(request.domain)
        if let serving = try await connections.list(in: tenant).first(where: { $0.domains.contains(domain) }) {
            throw RampartError(
                .failedPrecondition,
                "the SSO connection \(serving.id.uuidString.lowercased()) serves \(domain): take it off the connection first",
                details: ["field": "domain"]
            )
        }
        let removed = try await store.remove(domain, in: tenant).orThrow(Self.noSuchDomain)
        await changed("removed", domain, tenant: tenant, call: call)
        return Self.reply(removed)
    }

    static func checkedDomain(_ text: String) throws -> String {
        let domain = text.lowercased()
        guard text.utf8.count <= 253, SSOConnection.isDomain(domain) else {
            throw RampartError.invalidArgument("domain must be a domain name such as example.com", field: "domain")
        }
        guard !mailDomains.isFreeMail(domain), !mailDomains.isDisposable(domain) else {
            throw RampartError.invalidArgument("\(domain) is a mail provider's domain: no organization can claim its people", field: "domain")
        }
        guard !mailDomains.publicSuffixes.isPublicSuffix(domain) else {
            throw RampartError.invalidArgument("\(domain) is a public suffix, which nobody owns alone", field: "domain")
        }
        return domain
    }

    static func message(_ claim: SSODomainStore.Claim) -> Rampart_V1_SsoDomain {
        var message = Rampart_V1_SsoDomain()
        message.domain = claim.domain
        message.state = claim.verifiedAtMs == nil ? "pending" : "verified"
        message.recordName = recordPrefix + claim.domain
        message.recordValue = claim.challenge
        message.createdAtMs = claim.createdAtMs
        message.verifiedAtMs = claim.verifiedAtMs ?? 0
        return message
    }

    static func reply(_ claim: SSODomainStore.Claim) -> Rampart_V1_SsoDomainReply {
        var reply = Rampart_V1_SsoDomainReply()
        reply.domain = message(claim)
        return reply
    }

    private func changed(_ change: String, _ domain: String, tenant: TenantID, call: CallContext) async {
        var event = Rampart_V1_AuditEvent(.ssoDomainChanged, tenant: tenant, target: ("domain", domain), call: call, service: .auth)
        event.details["change"] = change
        await audit.record(event)
    }
}
