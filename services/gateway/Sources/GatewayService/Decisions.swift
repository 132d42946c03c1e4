public import Logging
public import NATSKit
public import RampartModels
public import ServiceKit
public import ServiceLifecycle
import Synchronization

/// The gateway's cache of permission decisions (PERM-2, PERM-6). A tenant's decisions are kept
/// for the revision they were answered at and dropped as soon as a newer one is announced in
/// `rampart_policy_revisions` (which this watches), after a second at most in case an
/// announcement was lost, and whenever a caller presents a newer revision. Super-admin checks
/// are never cached: each bypass must reach permissions to be audited. Public for the benchmark
/// of cached checks.
public final class PermissionChecker: Service, Sendable {
    struct Question: Hashable, Sendable {
        var principal: String
        var action: String
        var resource: String
        /// An API key's creator and scopes: the key's answer depends on them.
        var keyCreator: String
        var keyScopes: [String]
    }

    private struct TenantDecisions {
        var revision: UInt64 = 0
        var newestKnown: UInt64 = 0
        var since = ContinuousClock.now
        var answers: [Question: Rampart_V1_CheckReply] = [:]
    }

    static let maximumAge = Duration.seconds(1)
    /// Per tenant; past it the tenant's answers start over.
    static let maximumAnswers = 10_000

    private let rpc: RPCClient
    private let connection: NATSConnection
    private let logger: Logger
    private let tenants = Mutex<[TenantID: TenantDecisions]>([:])

    public init(rpc: RPCClient, connection: NATSConnection, logger: Logger) {
        self.rpc = rpc
        self.connection = connection
        self.logger = logger
    }

    /// May the caller do `action` on `resource`? `request.principal` and the key fields name
    /// whom the question is about.
    public func check(_ request: Rampart_V1_CheckRequest, context: CallContext) async throws -> Rampart_V1_CheckReply {
        let tenant = try context.requireTenant()
        let question = Question(
            principal: request.principal,
            action: request.action,
            resource: request.resource,
            keyCreator: request.apiKeyCreator,
            keyScopes: request.apiKeyScopes
        )
        if !request.superAdmin, let cached = cached(question, tenant: tenant, atLeast: request.atLeastRevision) { return cached }
        let reply = try await rpc.call(Subjects.Permissions.check, request, context: context)
        if !request.superAdmin { remember(reply, for: question, tenant: tenant) }
        return reply
    }

    func cached(_ question: Question, tenant: TenantID, atLeast revision: UInt64) -> Rampart_V1_CheckReply? {
        tenants.withLock { tenants in
            guard let decisions = tenants[tenant], decisions.revision >= max(revision, decisions.newestKnown),
                ContinuousClock.now - decisions.since < Self.maximumAge
            else { return nil }
            return decisions.answers[question]
        }
    }

    private func remember(_ reply: Rampart_V1_CheckReply, for question: Question, tenant: TenantID) {
        tenants.withLock { tenants in
            var decisions = tenants[tenant] ?? TenantDecisions()
            let expired = ContinuousClock.now - decisions.since >= Self.maximumAge
            if reply.revision > decisions.revision || expired || decisions.answers.count >= Self.maximumAnswers {
                guard reply.revision >= decisions.revision else { return }
                decisions = TenantDecisions(revision: reply.revision, newestKnown: max(decisions.newestKnown, reply.revision))
            }
            guard reply.revision == decisions.revision else { return }
            decisions.answers[question] = reply
            tenants[tenant] = decisions
        }
    }

    func noteRevision(_ revision: UInt64, of tenant: TenantID) {
        tenants.withLock { tenants in
            guard var decisions = tenants[tenant] else { return }
            decisions.newestKnown = max(decisions.newestKnown, revision)
            if decisions.newestKnown > decisions.revision { decisions.answers = [:] }
            tenants[tenant] = decisions
        }
    }

    public func run() async throws {
        await repeatUntilShutdown("policy revision watch", logger: logger) { [self] in
            // permissions creates the bucket; until it has, this retries.
            let bucket = try await connection.jetStream().keyValue(Subjects.Permissions.revisionsBucket)
            for try await event in try await bucket.watch() {
                guard case .entry(let entry) = event, entry.operation == .put,
                    let (tenant, revision) = Subjects.Permissions.revision(key: entry.key, value: entry.value)
                else { continue }
                noteRevision(revision, of: tenant)
            }
        }
    }
}
