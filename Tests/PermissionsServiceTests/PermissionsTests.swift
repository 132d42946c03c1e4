import Foundation
import RampartModels
import ServiceKit
import ServicesTestSupport
import TestSupport
import Testing

@Suite("PERM-1..6 permissions over NATS: roles, checks, API keys, super-admin, guards, consistency tokens", .serialized)
struct PermissionsTests {
    @Test("board roles: an editor writes but does not delete, a viewer only reads, tenant roles reach every board")
    func boardRoles() async throws {
        let world = try await PermissionsWorld.start()
        try await stopping(world) {
            let (editor, viewer, bystander, admin) = (
                try await world.member(), try await world.member(), try await world.member(), try await world.member(.admin)
            )
            try await world.setRole("boards/roadmap", world.owner, "owner")
            try await world.setRole("boards/roadmap", editor, "editor")
            let last = try await world.setRole("boards/roadmap", viewer, "viewer")

            func expect(
                _ principal: String,
                _ action: String,
                _ allowed: Bool,
                _ reason: String,
                sourceLocation: SourceLocation = #_sourceLocation
            ) async throws {
                let reply = try await world.check(principal, action, "boards/roadmap", atLeast: last.revision)
                #expect(reply.allowed == allowed, "\(action): \(reply.reason)", sourceLocation: sourceLocation)
                #expect(reply.reason == reason, sourceLocation: sourceLocation)
                #expect(reply.revision >= last.revision, sourceLocation: sourceLocation)
            }
            try await expect(editor, "boards.write", true, "resource_role:editor@boards/roadmap")
            try await expect(editor, "boards.delete", false, "no_role_grants")
            try await expect(viewer, "boards.read", true, "resource_role:viewer@boards/roadmap")
            try await expect(viewer, "boards.write", false, "no_role_grants")
            try await expect(bystander, "boards.read", false, "no_role_grants")
            try await expect(admin, "boards.delete", true, "tenant_role:admin")
            try await expect(world.owner, "tenant.delete", true, "tenant_role:owner")
            try await expect(admin, "tenant.delete", false, "no_role_grants")
            // A board role reaches that board only.
            let elsewhere = try await world.check(editor, "boards.write", "boards/other")
            #expect(!elsewhere.allowed)

            // Who has access: the board's bindings and the tenant roles that reach boards.
            var access = Rampart_V1_ListAccessRequest()
            access.resource = "boards/roadmap"
            let listed: Rampart_V1_ListAccessReply = try await world.cluster.call(
                Subjects.Permissions.listAccess,
                access,
                tenant: world.tenant,
                principal: world.owner
            )
            let pairs = Set(listed.bindings.map { "\($0.principal)=\($0.role)@\($0.resource)" })
            #expect(pairs.contains("\(editor)=editor@boards/roadmap"))
            #expect(pairs.contains("\(viewer)=viewer@boards/roadmap"))
            #expect(pairs.contains("\(admin)=admin@"))
            #expect(!pairs.contains { $0.hasPrefix(bystander) })
            // A viewer may not see who else has access; an editor may not share.
            await expectError(.permissionDenied) {
                let _: Rampart_V1_ListAccessReply = try await world.cluster.call(
                    Subjects.Permissions.listAccess,
                    access,
                    tenant: world.tenant,
                    principal: viewer
                )
            }
            await expectError(.permissionDenied) { try await world.setRole("boards/roadmap", bystander, "viewer", by: editor) }

            // What a principal may do: the viewer's read permissions, from one grant.
            var what = Rampart_V1_ListPermissionsRequest()
            what.principal = viewer
            what.resource = "boards/roadmap"
            let may: Rampart_V1_ListPermissionsReply = try await world.cluster.call(
                Subjects.Permissions.listPermissions,
                what,
                tenant: world.tenant,
                principal: viewer
            )
            #expect(may.permissions == ["boards.create", "boards.read", "items.read", "updates.read"])
            #expect(may.grants == ["tenant_role:member", "resource_role:viewer@boards/roadmap"])
            // Asking about someone else takes members.manage.
            what.principal = editor
            await expectError(.permissionDenied) {
                let _: Rampart_V1_ListPermissionsReply = try await world.cluster.call(
                    Subjects.Permissions.listPermissions,
                    what,
                    tenant: world.tenant,
                    principal: viewer
                )
            }

            // Batch: one revision for all.
            var batch = Rampart_V1_BatchCheckRequest()
            for (principal, action) in [(editor, "boards.write"), (viewer, "boards.write"), (admin, "members.manage")] {
                var check = Rampart_V1_CheckRequest()
                check.principal = principal
                check.action = action
                check.resource = "boards/roadmap"
                batch.checks.append(check)
            }
            let answers: Rampart_V1_BatchCheckReply = try await world.cluster.call(
                Subjects.Permissions.batchCheck,
                batch,
                tenant: world.tenant,
                principal: "system:gateway"
            )
            #expect(answers.results.map(\.allowed) == [true, false, true])
        }
    }

    @Test("PERM-6: a revoked role is refused by the very next check that presents the write's revision, even from a stale cache")
    func consistencyToken() async throws {
        let world = try await PermissionsWorld.start()
        try await stopping(world) {
            let editor = try await world.member()
            try await world.setRole("boards/plan", world.owner, "owner")
            for _ in 1...5 {
                let granted = try await world.setRole("boards/plan", editor, "editor")
                #expect(try await world.check(editor, "boards.write", "boards/plan", atLeast: granted.revision).allowed)
                let revoked = try await world.setRole("boards/plan", editor, nil)
                #expect(revoked.revision == granted.revision + 1)
                let next = try await world.check(editor, "boards.write", "boards/plan", atLeast: revoked.revision)
                #expect(!next.allowed)
                #expect(next.revision >= revoked.revision)
            }

            // A change whose announcement never arrived (made behind the service's back): the cache
            // may still answer from the old state, but never to a check presenting the new revision.
            let granted = try await world.setRole("boards/plan", editor, "editor")
            #expect(try await world.check(editor, "boards.write", "boards/plan", atLeast: granted.revision).allowed)
            let database = world.cluster.databases[.permissions]!
            _ = try await TestPostgres.psql(
                """
                DELETE FROM t_\(world.tenant.hex).resource_roles WHERE user_id = '\(editor.dropFirst(5))';
                UPDATE t_\(world.tenant.hex).policy_revision SET revision = revision + 1;
                """,
                database: database
            )
            let after = try await world.check(editor, "boards.write", "boards/plan", atLeast: granted.revision + 1)
            #expect(!after.allowed)
            #expect(after.revision == granted.revision + 1)

            // A revision the tenant never reached was not issued to anyone.
            await expectError(.invalidArgument) { _ = try await world.check(editor, "boards.read", "boards/plan", atLeast: granted.revision + 100) }
        }
    }

    @Test("PERM-2, KEY-2: an API key gets its scopes intersected with its creator's current roles")
    func apiKeys() async throws {
        let world = try await PermissionsWorld.start()
        try await stopping(world) {
            let key = "api_key:\(UUID().uuidString.lowercased())"
            let readOnly = (creator: world.owner, scopes: ["boards:read"])
            try await world.setRole("boards/b1", world.owner, "owner")

            let read = try await world.check(key, "boards.read", "boards/b1", key: readOnly)
            #expect(read.allowed)
            #expect(read.reason == "tenant_role:owner")
            // The creator is owner, the key still cannot write.
            let write = try await world.check(key, "boards.write", "boards/b1", key: readOnly)
            #expect(!write.allowed)
            #expect(write.reason == "scope_missing")
            // No scope grants deleting, whoever created the key.
            #expect(
                try await world.check(key, "boards.delete", "boards/b1", key: (world.owner, ["boards:read", "boards:write"])).reason
                    == "scope_missing"
            )

            // A member's key with a write scope writes only where the member may.
            let member = try await world.member()
            let memberKey = (creator: member, scopes: ["boards:write"])
            #expect(try await !world.check(key, "boards.write", "boards/b1", key: memberKey).allowed)
            let shared = try await world.setRole("boards/b1", member, "editor")
            #expect(try await world.check(key, "boards.write", "boards/b1", atLeast: shared.revision, key: memberKey).allowed)

            // A demoted creator demotes the key at once: the member's change returns the revision.
            let admin = try await world.member(.admin)
            let adminKey = (creator: admin, scopes: ["boards:read"])
            #expect(try await world.check(key, "boards.read", "boards/b1", key: adminKey).allowed)
            let demoted = try await world.updateMember(admin, role: .member)
            #expect(demoted.permissionsRevision > 0)
            #expect(try await !world.check(key, "boards.read", "boards/b1", atLeast: demoted.permissionsRevision, key: adminKey).allowed)
            // A disabled creator's keys do nothing.
            let disabled = try await world.updateMember(member, status: .disabled)
            let refused = try await world.check(key, "boards.write", "boards/b1", atLeast: disabled.permissionsRevision, key: memberKey)
            #expect(refused.reason == "member_disabled")

            // An API key is never a super-admin, and never changes roles.
            await expectError(.invalidArgument) { _ = try await world.check(key, "boards.read", "boards/b1", key: readOnly, superAdmin: true) }
            await expectError(.permissionDenied) { try await world.setRole("boards/b1", member, "viewer", by: key) }
        }
    }

    @Test("PERM-3: a super-admin bypass answers allow and is audited every time")
    func superAdminBypass() async throws {
        let world = try await PermissionsWorld.start()
        try await stopping(world) {
            let outsider = "user:\(UUID().uuidString.lowercased())"
            // Not a member: refused, unless the gateway vouches for a super-admin.
            #expect(try await world.check(outsider, "members.manage").reason == "not_a_member")
            for _ in 1...3 {
                let reply = try await world.check(outsider, "boards.delete", "boards/secret", superAdmin: true)
                #expect(reply.allowed)
                #expect(reply.reason == "superadmin_bypass")
            }
            var bypasses: [Rampart_V1_AuditEvent] = []
            #expect(
                try await eventually(within: .seconds(5)) {
                    bypasses = try await world.cluster.events(
                        Subjects.audit(tenant: world.tenant),
                        as: Rampart_V1_AuditEvent.self,
                        stream: Subjects.auditStream
                    ).filter { $0.action == AuditAction.superAdminBypass.rawValue }
                    return bypasses.count == 3
                }
            )
            #expect(bypasses.allSatisfy { $0.superAdmin && $0.actor.id == String(outsider.dropFirst(5)) && $0.target.id == "secret" })
            #expect(bypasses.allSatisfy { $0.details["action"] == "boards.delete" })
        }
    }

    @Test("PERM-5 and guards: no cross-tenant bindings, boards per tenant, the last owner stays, too many admins are flagged")
    func guards() async throws {
        let world = try await PermissionsWorld.start()
        try await stopping(world) {
            let (other, otherOwner) = try await world.otherTenant()
            let editor = try await world.member()

            // A user of tenant B is nobody in tenant A: neither bindable nor allowed.
            await expectError(.failedPrecondition) { try await world.setRole("boards/a1", otherOwner, "viewer") }
            #expect(try await world.check(otherOwner, "boards.read", "boards/a1").reason == "not_a_member")
            #expect(try await world.check(world.owner, "boards.read", "boards/a1", in: other).reason == "not_a_member")
            // A board is its tenant's: B's board a1 is another board than A's, and binding it there
            // neither fails nor touches A's (no squatting, nothing learnt about A).
            try await world.setRole("boards/a1", world.owner, "owner")
            try await world.setRole("boards/a1", otherOwner, "owner", by: otherOwner, in: other)
            #expect(try await !world.check(otherOwner, "boards.read", "boards/a1").allowed)
            #expect(try await world.check(world.owner, "boards.delete", "boards/a1").allowed)
            #expect(try await !world.check(world.owner, "boards.read", "boards/a1", in: other).allowed)

            // The last owner of a board cannot lose ownership; with a second owner, it can.
            try await world.setRole("boards/a1", editor, "editor")
            await expectError(.failedPrecondition) { try await world.setRole("boards/a1", world.owner, nil) }
            await expectError(.failedPrecondition) { try await world.setRole("boards/a1", world.owner, "viewer") }
            try await world.setRole("boards/a1", editor, "owner")
            try await world.setRole("boards/a1", world.owner, "viewer")
            // Removing what is not there says so.
            await expectError(.notFound) { try await world.setRole("boards/a1", try await world.member(), nil) }
            // A disabled member cannot be given a role, but loses the ones they hold.
            let leaving = try await world.member()
            try await world.setRole("boards/a1", leaving, "editor")
            _ = try await world.updateMember(leaving, status: .disabled)
            await expectError(.failedPrecondition) { try await world.setRole("boards/a1", leaving, "viewer") }
            try await world.setRole("boards/a1", leaving, nil)

            // The tenant's last owner is guarded by tenants, which owns membership.
            await expectError(.failedPrecondition) { _ = try await world.updateMember(world.owner, role: .admin) }

            // More than 3 owners and admins: a warning when it happens, and in the access review.
            let admins = [try await world.member(.admin), try await world.member(.admin), try await world.member()]
            #expect(try await world.updateMember(admins[1], role: .admin).warnings.isEmpty)
            #expect(try await world.updateMember(admins[2], role: .admin).warnings == ["4 owners and admins: keep 2 or 3"])
            let review: Rampart_V1_AccessReviewReply = try await world.cluster.call(
                Subjects.Permissions.accessReview,
                Rampart_V1_AccessReviewRequest(),
                tenant: world.tenant,
                principal: world.owner
            )
            #expect(review.warnings.contains("4 owners and admins: keep 2 or 3"))
        }

    }

    @Test("hostile input gets a precise error and changes nothing")
    func hostileInput() async throws {
        let world = try await PermissionsWorld.start()
        try await stopping(world) {
            let member = try await world.member()
            let before = try await world.check(world.owner, "boards.read").revision
            let badResources = [
                "boards", "boards/", "/x", "boards/../x", "boards/a/b", "boards/" + String(repeating: "a", count: 65), "boards/a b",
                "boards/x'; DROP TABLE resource_roles; --", "unknown/x", "BOARDS/x", "boards/\u{202E}x", "boards/x\u{0}",
            ]
            for resource in badResources {
                let error = await expectError(.invalidArgument) { _ = try await world.check(member, "boards.read", resource) }
                #expect(error?.details["field"] == "resource", "\(resource)")
                await expectError(.invalidArgument) { try await world.setRole(resource, member, "viewer") }
            }
            for principal in ["", "user:", "user:not-a-uuid", "admin", "system:gateway", "user:\(UUID())x", "api_key:\(UUID())"] {
                let error = await expectError(.invalidArgument) { _ = try await world.check(principal, "boards.read") }
                #expect(error?.details["field"] != nil, "\(principal)")
            }
            for action in ["", "boards", "boards.fly", "boards.read; --", String(repeating: "a", count: 200)] {
                let error = await expectError(.invalidArgument) { _ = try await world.check(member, action) }
                #expect(error?.details["field"] == "action", "\(action)")
            }
            await expectError(.invalidArgument) { try await world.setRole("boards/x", member, "superuser") }
            await expectError(.invalidArgument) { try await world.setRole("boards/x", member, "admin") }
            await expectError(.invalidArgument) { try await world.setRole("boards/x", "api_key:\(UUID().uuidString.lowercased())", "viewer") }
            await expectError(.invalidArgument) {
                var batch = Rampart_V1_BatchCheckRequest()
                batch.checks = Array(repeating: Rampart_V1_CheckRequest(), count: 101)
                let _: Rampart_V1_BatchCheckReply = try await world.cluster.call(
                    Subjects.Permissions.batchCheck,
                    batch,
                    tenant: world.tenant,
                    principal: world.owner
                )
            }
            // A member asking about someone else, or about the tenant's members, is refused.
            await expectError(.permissionDenied) { _ = try await world.check(world.owner, "boards.read", as: member) }
            await expectError(.permissionDenied) {
                let _: Rampart_V1_AccessReviewReply = try await world.cluster.call(
                    Subjects.Permissions.accessReview,
                    Rampart_V1_AccessReviewRequest(),
                    tenant: world.tenant,
                    principal: member
                )
            }
            // sync_member is for services only.
            await expectError(.permissionDenied) {
                var sync = Rampart_V1_SyncMemberRequest()
                sync.userID = String(member.dropFirst(5))
                let _: Rampart_V1_SyncMemberReply = try await world.cluster.call(
                    Subjects.Permissions.syncMember,
                    sync,
                    tenant: world.tenant,
                    principal: member
                )
            }
            // Nothing was written: the revision is where it was.
            #expect(try await world.check(world.owner, "boards.read").revision == before)
            #expect(
                try await TestPostgres.psql(
                    "SELECT count(*) FROM \(world.tenant.schemaName).resources",
                    database: world.cluster.databases[.permissions]!
                )
                    == "0"
            )
        }
    }

    @Test("PERM-4: the access review lists members, roles and last activity, as JSON and CSV, with a quarterly due date")
    func accessReview() async throws {
        let world = try await PermissionsWorld.start()
        try await stopping(world) {
            let editor = try await world.member()
            try await world.setRole("boards/q4", world.owner, "owner")
            try await world.setRole("boards/q4", editor, "editor")
            // A sign-in, as auth announces it.
            var login = Rampart_V1_MemberLoggedIn()
            login.eventID = UUID().uuidString.lowercased()
            login.tenantID = world.tenant.hex
            login.userID = String(editor.dropFirst(5))
            login.occurredAtMs = 1_790_000_000_000
            _ = try await world.cluster.client.jetStream().publish(
                try login.serializedBytes(),
                to: Subjects.MemberEvents.loggedIn,
                messageID: login.eventID
            )

            func review(_ format: String = "json", by caller: String? = nil) async throws -> Rampart_V1_AccessReviewReply {
                var request = Rampart_V1_AccessReviewRequest()
                request.format = format
                return try await world.cluster.call(
                    Subjects.Permissions.accessReview,
                    request,
                    tenant: world.tenant,
                    principal: caller ?? world.owner
                )
            }
            var report = try await review()
            #expect(
                try await eventually(within: .seconds(5)) {
                    report = try await review()
                    return report.entries.first { "user:\($0.userID)" == editor }?.lastActiveAtMs == 1_790_000_000_000
                }
            )
            #expect(report.entries.count == 2)
            let editorEntry = try #require(report.entries.first { "user:\($0.userID)" == editor })
            #expect(editorEntry.tenantRole == "member")
            #expect(editorEntry.resourceRoles.map { "\($0.role)@\($0.resource)" } == ["editor@boards/q4"])
            #expect(report.reviewDueAtMs > report.generatedAtMs + 89 * 86_400_000)
            #expect(report.lastReviewedAtMs == 0)

            let csv = try await review("csv").csv
            let lines = csv.split(separator: "\r\n").map(String.init)
            #expect(lines.first == "user_id,email,tenant_role,status,resource_roles,last_active_at")
            #expect(
                lines.contains { $0.hasPrefix(editor.dropFirst(5) + ",") && $0.hasSuffix(",member,active,editor@boards/q4,2026-09-21T14:13:20.000Z") }
            )
            await expectError(.invalidArgument) { _ = try await review("xml") }

            var done = Rampart_V1_CompleteAccessReviewRequest()
            done.note = "Q4 review: all good"
            let completed: Rampart_V1_AccessReviewReply = try await world.cluster.call(
                Subjects.Permissions.completeAccessReview,
                done,
                tenant: world.tenant,
                principal: world.owner
            )
            #expect(completed.lastReviewedBy == world.owner)
            #expect(completed.reviewDueAtMs >= completed.lastReviewedAtMs + 90 * 86_400_000)
            done.note = "\u{7}bell"
            await expectError(.invalidArgument) {
                let _: Rampart_V1_AccessReviewReply = try await world.cluster.call(
                    Subjects.Permissions.completeAccessReview,
                    done,
                    tenant: world.tenant,
                    principal: world.owner
                )
            }
        }
    }
}
