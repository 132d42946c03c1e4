import Logging
import NATSKit
import PostgresNIO
import RampartModels
import ServiceKit
import ServiceLifecycle
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Each tenant's `Policy`, loaded from the database and kept in memory so a check costs no query.
///
/// A cached policy is used only while nothing says it is old: a check presenting a newer
/// revision (PERM-6) reloads it first; a write on any replica announces its revision in the
/// `rampart_policy_revisions` bucket, which every replica watches; and the revision is
/// re-read at least every second, in case an announcement was lost. Concurrent reloads of one
/// tenant share a single load.
final class PolicyStore: Sendable {
    let database: Database
    let logger: Logger

    /// How long a policy is trusted without asking the database whether it is still current.
    static let revalidateAfter = Duration.seconds(1)
    static var revisionsBucket: String { Subjects.Permissions.revisionsBucket }

    private struct Entry {
        var policy: Policy?
        var validatedAt = ContinuousClock.Instant.now
        /// The newest revision announced for the tenant.
        var newestKnown: UInt64 = 0
        var loading: Task<Policy, any Error>?
    }

    private let entries = Mutex<[TenantID: Entry]>([:])
    let writers = TenantWriters()

    init(database: Database, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    /// The tenant's policy at `atLeast` or newer. A revision the tenant never reached is an
    /// invalid argument: it was not returned by a write in this tenant.
    func policy(_ tenant: TenantID, atLeast: UInt64 = 0) async throws -> Policy {
        for attempt in 1...2 {
            let now = ContinuousClock.now
            let (cached, load) = entries.withLock { entries -> (Policy?, Task<Policy, any Error>?) in
                var entry = entries[tenant] ?? Entry()
                if let policy = entry.policy, policy.revision >= max(atLeast, entry.newestKnown), now - entry.validatedAt < Self.revalidateAfter {
                    return (policy, nil)
                }
                if attempt == 1, let loading = entry.loading { return (nil, loading) }
                let previous = entry.policy
                let loading = Task { try await self.load(tenant, reusing: previous) }
                entry.loading = loading
                entries[tenant] = entry
                return (nil, loading)
            }
            if let cached { return cached }
            let policy: Policy
            do {
                policy = try await load!.value
            } catch {
                entries.withLock { $0[tenant] = nil }
                throw error
            }
            entries.withLock { entries in
                guard var entry = entries[tenant] else { return }
                if entry.policy.map({ $0.revision <= policy.revision }) ?? true {
                    entry.policy = policy
                    entry.validatedAt = .now
                }
                entry.loading = nil
                entries[tenant] = entry
            }
            // A load already under way may have read before the caller's revision was written.
            if policy.revision >= atLeast { return policy }
        }
        throw RampartError.invalidArgument("this tenant has not reached revision \(atLeast)", field: "at_least_revision")
    }

    /// A write (here or on another replica) reached `revision`: older policies are not served.
    func noteRevision(_ revision: UInt64, of tenant: TenantID) {
        entries.withLock { entries in
            var entry = entries[tenant] ?? Entry()
            entry.newestKnown = max(entry.newestKnown, revision)
            entries[tenant] = entry
        }
    }

    /// A write's own result: used when the cache still holds the revision just before it, so
    /// the writer need not reload the tenant. Anything else leaves the cache to reload.
    func install(_ policy: Policy, replacing previous: UInt64, for tenant: TenantID) {
        entries.withLock { entries in
            guard var entry = entries[tenant], entry.policy?.revision == previous else { return }
            entry.policy = policy
            entry.newestKnown = max(entry.newestKnown, policy.revision)
            entries[tenant] = entry
        }
    }

    func forget(_ tenant: TenantID) {
        _ = entries.withLock { $0.removeValue(forKey: tenant) }
    }

    /// Reads the whole policy in one snapshot, or only the revision when `previous` is current.
    private func load(_ tenant: TenantID, reusing previous: Policy?) async throws -> Policy {
        guard try await database.isProvisioned(tenant) else { throw RampartError(.notFound, "no permissions for this tenant") }
        return try await database.transaction { connection in
            try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
            let revisionRows = try await connection.query("SELECT revision FROM \(schema: tenant).policy_revision", logger: logger)
            var revision: UInt64 = 0
            for try await value in revisionRows.decode(Int64.self) { revision = UInt64(value) }
            if let previous, previous.revision == revision { return previous }

            var members: [UUID: Policy.Member] = [:]
            var resourceRoles: [Resource: [UUID: String]] = [:]
            var rolePermissions: [String: [String: Set<String>]] = [:]
            var scopePermissions: [String: Set<String>] = [:]
            let memberRows = try await connection.query(
                "SELECT user_id, email, role, status FROM \(schema: tenant).members",
                logger: logger
            )
            for try await (user, email, role, status) in memberRows.decode((UUID, String, String, String).self) {
                members[user] = Policy.Member(email: email, role: role, isActive: status == "active")
            }
            let bindings = try await connection.query(
                "SELECT resource_type, resource_id, user_id, role FROM \(schema: tenant).resource_roles",
                logger: logger
            )
            for try await (type, id, user, role) in bindings.decode((String, String, UUID, String).self) {
                resourceRoles[Resource(type: type, id: id), default: [:]][user] = role
            }
            let roles = try await connection.query(
                "SELECT scope, role, permission FROM \(schema: tenant).role_permissions",
                logger: logger
            )
            for try await (scope, role, permission) in roles.decode((String, String, String).self) {
                rolePermissions[scope, default: [:]][role, default: []].insert(permission)
            }
            let scopes = try await connection.query("SELECT scope, permission FROM public.scope_permissions", logger: logger)
            for try await (scope, permission) in scopes.decode((String, String).self) {
                scopePermissions[scope, default: []].insert(permission)
            }
            return Policy(
                revision: revision,
                members: members,
                resourceRoles: resourceRoles,
                rolePermissions: rolePermissions,
                scopePermissions: scopePermissions
            )
        }
    }
}

/// Runs one body at a time per tenant (first come, first served); other tenants never wait.
actor TenantWriters {
    private var busy: Set<TenantID> = []
    private var waiting: [TenantID: [CheckedContinuation<Void, Never>]] = [:]

    func exclusively<Result: Sendable>(_ tenant: TenantID, _ body: () async throws -> Result) async throws -> Result {
        if busy.contains(tenant) {
            await withCheckedContinuation { waiting[tenant, default: []].append($0) }
        } else {
            busy.insert(tenant)
        }
        defer { handOver(tenant) }
        return try await body()
    }

    private func handOver(_ tenant: TenantID) {
        guard var queue = waiting[tenant], !queue.isEmpty else {
            busy.remove(tenant)
            return
        }
        let next = queue.removeFirst()
        waiting[tenant] = queue.isEmpty ? nil : queue
        next.resume()
    }
}

/// Announces and follows tenants' revisions through the `rampart_policy_revisions` bucket
/// (key: tenant, value: the revision in decimal), which gateways watch too.
struct PolicyRevisions: Service {
    let bucket: KeyValueBucket
    let store: PolicyStore
    let logger: Logger

    static func ensureBucket(_ jetStream: JetStream) async throws -> KeyValueBucket {
        try await jetStream.ensureKeyValue(.init(bucket: PolicyStore.revisionsBucket, history: 1))
    }

    func announce(_ revision: UInt64, of tenant: TenantID) async {
        store.noteRevision(revision, of: tenant)
        do {
            _ = try await bucket.put(tenant.hex, Subjects.Permissions.revisionValue(revision))
        } catch {
            // Other replicas still see it within `PolicyStore.revalidateAfter`.
            logger.warning("revision announcement failed", metadata: ["tenant": "\(tenant.hex)", "error": "\(loggable(error))"])
        }
    }

    func run() async throws {
        await repeatUntilShutdown("policy revision watch", logger: logger) {
            for try await event in try await bucket.watch() {
                guard case .entry(let entry) = event, entry.operation == .put,
                    let (tenant, revision) = Subjects.Permissions.revision(key: entry.key, value: entry.value)
                else { continue }
                store.noteRevision(revision, of: tenant)
            }
        }
    }
}
