import PostgresNIO
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// PERM-4: who has access to what, with last activity, for a quarterly review.
extension Permissions {
    static let reviewPeriodDays: Int64 = 90

    func accessReview(_ request: Rampart_V1_AccessReviewRequest, call: CallContext) async throws -> Rampart_V1_AccessReviewReply {
        let tenant = try call.requireTenant()
        guard ["", "json", "csv"].contains(request.format) else {
            throw RampartError.invalidArgument("the format must be json or csv", field: "format")
        }
        let policy = try await store.policy(tenant)
        try requireCaller(call, may: "members.manage", on: nil, policy: policy)
        var reply = Rampart_V1_AccessReviewReply()
        reply.generatedAtMs = WallClock.milliseconds()
        reply.revision = policy.revision

        var entries: [UUID: Rampart_V1_AccessReviewEntry] = [:]
        let members = try await database.query(
            """
            SELECT user_id, email, role, status, coalesce((extract(epoch FROM last_active_at) * 1000)::bigint, 0)
            FROM \(schema: tenant).members ORDER BY email, user_id
            """
        )
        var order: [UUID] = []
        for try await (user, email, role, status, lastActive) in members.decode((UUID, String, String, String, Int64).self) {
            var entry = Rampart_V1_AccessReviewEntry()
            entry.userID = user.uuidString.lowercased()
            entry.email = email
            entry.tenantRole = role
            entry.status = status
            entry.lastActiveAtMs = lastActive
            entries[user] = entry
            order.append(user)
        }
        let bindings = try await database.query(
            """
            SELECT resource_type, resource_id, user_id, role, granted_by, (extract(epoch FROM granted_at) * 1000)::bigint
            FROM \(schema: tenant).resource_roles ORDER BY resource_type, resource_id, user_id
            """
        )
        for try await (type, id, user, role, grantedBy, grantedAt) in bindings.decode((String, String, UUID, String, String, Int64).self) {
            var binding = Self.binding(user, role: role, resource: Resource(type: type, id: id))
            binding.grantedBy = grantedBy
            binding.grantedAtMs = grantedAt
            entries[user]?.resourceRoles.append(binding)
        }
        reply.entries = order.compactMap { entries[$0] }
        reply.warnings = try await warnings(tenant, atLeast: policy.revision)

        let reviews = try await database.query(
            """
            SELECT (extract(epoch FROM coalesce(r.completed_at, f.provisioned_at)) * 1000)::bigint, coalesce(r.completed_by, ''),
                   r.completed_at IS NOT NULL
            FROM \(schema: tenant).tenant_facts f
            LEFT JOIN LATERAL (SELECT completed_at, completed_by FROM \(schema: tenant).access_reviews ORDER BY id DESC LIMIT 1) r ON true
            """
        )
        for try await (since, by, reviewed) in reviews.decode((Int64, String, Bool).self) {
            if reviewed {
                reply.lastReviewedAtMs = since
                reply.lastReviewedBy = by
            }
            reply.reviewDueAtMs = since + Self.reviewPeriodDays * 86_400_000
        }
        if reply.reviewDueAtMs <= reply.generatedAtMs { reply.warnings.append("the quarterly access review is due") }
        if request.format == "csv" { reply.csv = Self.csv(reply.entries) }
        return reply
    }

    func completeAccessReview(_ request: Rampart_V1_CompleteAccessReviewRequest, call: CallContext) async throws -> Rampart_V1_AccessReviewReply {
        let tenant = try call.requireTenant()
        guard request.note.utf8.count <= 2000,
            !request.note.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && $0 != "\n" })
        else { throw RampartError.invalidArgument("the note is at most 2000 bytes of text", field: "note") }
        try requireCaller(call, may: "members.manage", on: nil, policy: try await store.policy(tenant))
        let principal = call.principal?.description ?? ""
        try await database.query(
            "INSERT INTO \(schema: tenant).access_reviews (completed_by, note) VALUES (\(principal), \(request.note))"
        )
        var event = Rampart_V1_AuditEvent(.accessReviewCompleted, tenant: tenant, target: ("tenant", tenant.hex), call: call, service: .permissions)
        if !request.note.isEmpty { event.details = ["note": request.note] }
        await record(event)
        return try await accessReview(Rampart_V1_AccessReviewRequest(), call: call)
    }

    static let csvColumns = ["user_id", "email", "tenant_role", "status", "resource_roles", "last_active_at"]

    static func csv(_ entries: [Rampart_V1_AccessReviewEntry]) -> String {
        var lines = [csvColumns.joined(separator: ",")]
        for entry in entries {
            let roles = entry.resourceRoles.map { "\($0.role)@\($0.resource)" }.joined(separator: " ")
            let lastActive = entry.lastActiveAtMs == 0 ? "" : WallClock.rfc3339(milliseconds: entry.lastActiveAtMs)
            lines.append([entry.userID, entry.email, entry.tenantRole, entry.status, roles, lastActive].map(CSVText.cell).joined(separator: ","))
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }
}
