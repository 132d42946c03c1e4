// UUID.
import Foundation
import HTTPTypes
import Hummingbird
import RampartModels
import ServiceKit

/// Members & roles (TEN-10, MFA-6), for who has `members.manage`: the members and the
/// invitations waiting, an invitation by address and role, sent again or cancelled; a member's
/// role changed (with a recent proof), disabled at once ("a former employee"), enabled again,
/// removed, their MFA reset (the API asks the proof).
struct MemberPages {
    let console: ConsoleRoutes

    static let path = "/console/members"

    static let notices = [
        "invited": "The invitation is sent.",
        "resent": "The invitation is sent again, with a new link; the old one no longer works.",
        "cancelled": "The invitation is cancelled: its link no longer works.",
        "role": "The role is changed.",
        "disabled": "The member is disabled: their sessions and API keys stopped working.",
        "enabled": "The member can sign in again.",
        "removed": "The member is removed from the organization.",
        "mfa": "The member's MFA is reset: they set it up again at their next sign-in.",
        "confirmed": "Thank you: you can make the change now.",
        "reviewed": "The access review is recorded as complete.",
    ]

    static let roles: [(role: Rampart_V1_MemberRole, name: String)] = [(.member, "Member"), (.admin, "Admin"), (.owner, "Owner")]

    func add(to router: Router<GatewayRequestContext>) {
        let members = router.group("/console/members")
        members.get { request, context in
            try await console.signedInPage(request, context) { call in try await overview(call) }
        }
        members.post("invite") { request, context in
            let form = try await console.checkedForm(request, context)
            return try await console.signedInPage(request, context, returnTo: Self.path) { call in
                var message = Rampart_V1_InviteMemberRequest()
                message.email = (form["email"] ?? "").trimmingCharacters(in: .whitespaces)
                message.role = Self.role(form["role"]) ?? .member
                do {
                    _ = try await call.send(.post, tenantPath(call, "members"), message, as: Rampart_V1_InviteMemberReply.self)
                    return ConsoleRoutes.seeOther(Self.path + "?done=invited")
                } catch let refusal as ConsoleRefusal where refusal.status != .unauthorized {
                    var values = refusal.shown(["email", "role"])
                    values["typedEmail"] = message.email
                    return try await overview(call, status: refusal.status, values)
                }
            }
        }
        // The access review (TEN-10): who has what, its warnings, the report as CSV, and the
        // review recorded as done.
        members.get("review") { request, context in
            try await console.signedInPage(request, context) { call in try await review(call) }
        }
        members.get("review.csv") { request, context in
            try await console.signedInPage(request, context, returnTo: Self.path + "/review") { call in
                try await call.api.download(
                    tenantPath(call, "access-review?format=csv"),
                    accessToken: call.session.accessToken,
                    request: request,
                    context: context
                )
            }
        }
        members.post("review/complete") { request, context in
            let form = try await console.checkedForm(request, context)
            return try await console.signedInPage(request, context, returnTo: Self.path + "/review") { call in
                var message = Rampart_V1_CompleteAccessReviewRequest()
                message.note = form["note"] ?? ""
                do {
                    _ = try await call.send(.post, tenantPath(call, "access-review/complete"), message, as: Rampart_V1_AccessReviewReply.self)
                    return ConsoleRoutes.seeOther(Self.path + "/review?done=reviewed")
                } catch let refusal as ConsoleRefusal where refusal.status != .unauthorized {
                    return try await review(call, status: refusal.status, refusal.shown(["note"]))
                }
            }
        }
        invitationAction(members, "resend", done: "resent") { call, id in
            _ = try await call.send(.post, tenantPath(call, "invitations/\(id)/resend"), as: Rampart_V1_InviteMemberReply.self)
        }
        invitationAction(members, "cancel", done: "cancelled") { call, id in
            _ = try await call.send(.delete, tenantPath(call, "invitations/\(id)"), as: Rampart_V1_CancelInvitationReply.self)
        }
        memberAction(members, "role", done: "role") { call, form, user in
            guard let role = Self.role(form["role"]) else { throw ConsoleRefusal(status: .badRequest, detail: "Choose a role.", errors: [:]) }
            try console.requireRecentProof(call, "Changing a member's role")
            var message = Rampart_V1_UpdateMemberRequest()
            message.userID = user
            message.role = role
            _ = try await call.send(.patch, tenantPath(call, "members/\(user)"), message, as: Rampart_V1_MemberReply.self)
        }
        memberAction(members, "disable", done: "disabled") { call, _, user in
            var message = Rampart_V1_UpdateMemberRequest()
            message.userID = user
            message.status = .disabled
            _ = try await call.send(.patch, tenantPath(call, "members/\(user)"), message, as: Rampart_V1_MemberReply.self)
        }
        memberAction(members, "enable", done: "enabled") { call, _, user in
            var message = Rampart_V1_UpdateMemberRequest()
            message.userID = user
            message.status = .active
            _ = try await call.send(.patch, tenantPath(call, "members/\(user)"), message, as: Rampart_V1_MemberReply.self)
        }
        memberAction(members, "remove", done: "removed") { call, _, user in
            _ = try await call.send(.delete, tenantPath(call, "members/\(user)"), as: Rampart_V1_MemberReply.self)
        }
        memberAction(members, "reset-mfa", done: "mfa") { call, _, user in
            _ = try await call.send(.delete, tenantPath(call, "members/\(user)/mfa"), as: Rampart_V1_MfaResetReply.self)
        }
    }

    /// A form about one member (`user_id`): `change`, then back to the list saying `done`.
    private func memberAction(
        _ group: RouterGroup<GatewayRequestContext>,
        _ path: String,
        done: String,
        _ change: @escaping @Sendable (ConsoleCall, ConsoleForm.Fields, String) async throws -> Void
    ) {
        group.post(RouterPath(path)) { request, context in
            let form = try await console.checkedForm(request, context)
            return try await console.signedInPage(request, context, returnTo: Self.path) { call in
                guard let user = form["user_id"].flatMap(UUID.init(uuidString:)) else {
                    return try await overview(call, status: .badRequest, ["problem": "That is not one of the members listed here."])
                }
                return try await changing(call, done: done) { try await change(call, form, user.uuidString.lowercased()) }
            }
        }
    }

    /// A form about one invitation (`invitation_id`), as `memberAction`.
    private func invitationAction(
        _ group: RouterGroup<GatewayRequestContext>,
        _ path: String,
        done: String,
        _ change: @escaping @Sendable (ConsoleCall, String) async throws -> Void
    ) {
        group.post(RouterPath("invitations/\(path)")) { request, context in
            let form = try await console.checkedForm(request, context)
            return try await console.signedInPage(request, context, returnTo: Self.path) { call in
                guard let id = form["invitation_id"].flatMap(UUID.init(uuidString:)) else {
                    return try await overview(call, status: .badRequest, ["problem": "That is not one of the invitations listed here."])
                }
                return try await changing(call, done: done) { try await change(call, id.uuidString.lowercased()) }
            }
        }
    }

    /// The change made, then the list saying so; or the list with the refusal above it.
    private func changing(_ call: ConsoleCall, done: String, _ change: () async throws -> Void) async throws -> Response {
        do {
            try await change()
            return ConsoleRoutes.seeOther(Self.path + "?done=\(done)")
        } catch let refusal as ConsoleRefusal where refusal.status != .unauthorized {
            return try await overview(call, status: refusal.status, ["problem": refusal.detail])
        }
    }

    private func tenantPath(_ call: ConsoleCall, _ rest: String) -> String {
        "/v1/tenants/\(call.caller.tenant.hex)/\(rest)"
    }

    /// The members, the invitations, the form of a new one.
    private func overview(_ call: ConsoleCall, status: HTTPResponse.Status = .ok, _ values: [String: Any] = [:]) async throws -> Response {
        let list = try await call.get(tenantPath(call, "members"), as: Rampart_V1_ListMembersReply.self)
        let me = call.caller.principal.description
        let managers = list.members.filter { $0.status == .active && ($0.role == .owner || $0.role == .admin) }.count
        var object: [String: Any] = [
            "members": list.members.map { member -> [String: Any] in
                [
                    "id": member.userID,
                    "email": member.email,
                    "role": Self.name(member.role),
                    "roles": Self.roles.map { ["value": Self.value($0.role), "name": $0.name, "selected": $0.role == member.role] },
                    "disabled": member.status == .disabled,
                    "isolated": member.hasIsolation,
                    "joined": SecurityPages.time(member.joinedAtMs),
                    "me": "user:\(member.userID)" == me,
                ]
            },
            "invitations": list.invitations.map { invitation -> [String: Any] in
                [
                    "id": invitation.invitationID, "email": invitation.email, "role": Self.name(invitation.role),
                    "expires": SecurityPages.time(invitation.expiresAtMs),
                ]
            },
            "hasInvitations": !list.invitations.isEmpty,
            "roles": Self.roles.map { ["value": Self.value($0.role), "name": $0.name, "selected": $0.role == .member] },
        ]
        // Two or three people who can manage the organization: one alone locks it out when they
        // leave; many widen what a stolen session can do.
        if managers < 2 {
            object["managersWarning"] =
                "Only one person can manage this organization. Make a second admin, so that it is not locked out if they leave."
        } else if managers > 3 {
            object["managersWarning"] = "\(managers) people can manage this organization. Two or three is safer: each is a way in for an attacker."
        }
        object["notice"] = call.notice(Self.notices)
        object.merge(values) { _, new in new }
        return try await console.page("members", call, status: status, object)
    }

    private func review(_ call: ConsoleCall, status: HTTPResponse.Status = .ok, _ values: [String: Any] = [:]) async throws -> Response {
        let report = try await call.get(tenantPath(call, "access-review"), as: Rampart_V1_AccessReviewReply.self)
        var object: [String: Any] = [
            "entries": report.entries.map { entry -> [String: Any] in
                [
                    "email": entry.email,
                    "role": entry.tenantRole,
                    "status": entry.status,
                    "resources": entry.resourceRoles.count,
                    "lastActive": entry.lastActiveAtMs == 0 ? "Never" : SecurityPages.time(entry.lastActiveAtMs),
                ]
            },
            "warnings": report.warnings,
            "lastReviewed": SecurityPages.time(report.lastReviewedAtMs),
            "due": SecurityPages.time(report.reviewDueAtMs),
            "overdue": report.reviewDueAtMs > 0 && report.reviewDueAtMs < WallClock.milliseconds(),
        ]
        object["notice"] = call.notice(Self.notices)
        object.merge(values) { _, new in new }
        return try await console.page("access-review", call, section: "members", status: status, object)
    }

    static func role(_ text: String?) -> Rampart_V1_MemberRole? {
        roles.first { value($0.role) == text }?.role
    }

    static func value(_ role: Rampart_V1_MemberRole) -> String {
        switch role {
        case .owner: "owner"
        case .admin: "admin"
        default: "member"
        }
    }

    static func name(_ role: Rampart_V1_MemberRole) -> String {
        roles.first { $0.role == role }?.name ?? "Member"
    }
}
