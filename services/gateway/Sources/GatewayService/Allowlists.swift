import HTTPTypes
import Hummingbird
import Logging
import RampartModels
import RateLimitKit
import ServiceKit
import Synchronization

/// TEN-11 at the gateway: each tenant's IP allowlist, fetched from tenants and kept for a few
/// seconds. A caller from outside its tenant's list is refused with 403 and the refusal is
/// audited; an empty list lets everyone in. If tenants cannot say, nobody is let in (503).
final class TenantAllowlists: Sendable {
    private let rpc: RPCClient
    private let audit: AuditPublisher
    private let lifetime: Duration
    private let logger: Logger
    private let lists = Mutex<[TenantID: (networks: [IPNetwork], fetchedAt: ContinuousClock.Instant)]>([:])

    init(rpc: RPCClient, audit: AuditPublisher, lifetime: Duration, logger: Logger) {
        self.rpc = rpc
        self.audit = audit
        self.lifetime = lifetime
        self.logger = logger
    }

    func admit(_ caller: Caller, from address: String?, call: CallContext) async throws {
        let networks = try await networks(of: caller.tenant, call: call)
        guard !networks.isEmpty else { return }
        if let address, let client = IPNetwork(address: address), networks.contains(where: { $0.contains(client) }) { return }
        var event = Rampart_V1_AuditEvent(
            .ipAllowlistDenied,
            tenant: caller.tenant,
            target: ("tenant", caller.tenant.hex),
            call: call,
            service: .gateway
        )
        event.outcome = .failure
        event.reason = "address \(address ?? "unknown") is outside the tenant's IP allowlist"
        do {
            try await audit.publish(event)
        } catch {
            logger.error("allowlist refusal not audited", metadata: ["tenant": "\(caller.tenant.hex)", "error": "\(loggable(error))"])
        }
        throw RampartError(.permissionDenied, "your address is not in this organization's IP allowlist")
    }

    /// Drops what this replica knows of `tenant`'s list (after a change made through it).
    func forget(_ tenant: TenantID) {
        _ = lists.withLock { $0.removeValue(forKey: tenant) }
    }

    private func networks(of tenant: TenantID, call: CallContext) async throws -> [IPNetwork] {
        if let cached = lists.withLock({ $0[tenant] }), ContinuousClock.now - cached.fetchedAt < lifetime { return cached.networks }
        var asked = CallContext(requestID: call.requestID, tenantID: tenant, principal: Principal(service: .gateway), clientIP: call.clientIP)
        asked.deadline = call.deadline
        let reply: Rampart_V1_IpAllowlist
        do {
            reply = try await rpc.call(Subjects.Tenants.getIPAllowlist, Rampart_V1_GetIpAllowlistRequest(), context: asked)
        } catch let error as RampartError where [.unavailable, .deadlineExceeded, .internal].contains(error.code) {
            throw RampartError(.unavailable, "the organization's IP allowlist cannot be checked right now: try again shortly")
        }
        // tenants stores only canonical CIDRs; anything unreadable would be a fault, and is
        // refused rather than skipped.
        let networks = try reply.cidrs.map { text in
            guard let network = IPNetwork(cidr: text) else { throw RampartError(.internal, "unreadable allowlist entry") }
            return network
        }
        lists.withLock { $0[tenant] = (networks, .now) }
        return networks
    }
}
