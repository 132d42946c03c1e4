// trimmingCharacters.
import Foundation
import HTTPTypes
import Hummingbird
import RampartModels
import ServiceKit

/// Organization (TEN-3, MFA-7, AUTH-6) and its IP allowlist (TEN-11), for who has
/// `settings.manage`: the name and plan, what is fixed (data region, registration), the MFA
/// requirement and password rotation (a recent proof first: they shed or add defences), and
/// the addresses members may call from.
struct OrganizationPages {
    let console: ConsoleRoutes

    static let path = "/console/organization"
    static let allowlistPath = "/console/allowlist"

    static let notices = [
        "saved": "Saved.",
        "confirmed": "Thank you: you can make the change now.",
    ]

    static let mfaRequirements: [(value: Rampart_V1_MfaRequirement, key: String, label: String)] = [
        (.none, "none", "Each member chooses"),
        (.admins, "admins", "Owners and admins must use MFA"),
        (.everyone, "everyone", "Everyone must use MFA"),
    ]
    static let rotations: [(days: UInt32, label: String)] = [(0, "Never"), (90, "Every 90 days"), (180, "Every 180 days"), (365, "Every year")]
    static let plans = [("starter", "Starter"), ("pro", "Pro"), ("enterprise", "Enterprise")]

    func add(to router: Router<GatewayRequestContext>) {
        let organization = router.group("/console/organization")
        organization.get { request, context in
            try await console.signedInPage(request, context) { call in try await overview(call) }
        }
        organization.post("details") { request, context in
            let form = try await console.checkedForm(request, context)
            return try await console.signedInPage(request, context, returnTo: Self.path) { call in
                var message = Rampart_V1_UpdateTenantRequest()
                message.name = (form["name"] ?? "").trimmingCharacters(in: .whitespaces)
                // Only a change of plan is sent: the same plan again is no change to check.
                if let plan = form["plan"], plan != form["current_plan"] { message.plan = plan }
                return try await saving(call, message, fields: ["name", "plan"])
            }
        }
        organization.post("policy") { request, context in
            let form = try await console.checkedForm(request, context)
            return try await console.signedInPage(request, context, returnTo: Self.path) { call in
                guard let requirement = Self.mfaRequirements.first(where: { $0.key == form["mfa_requirement"] }),
                    let rotation = form["password_rotation_days"].flatMap(UInt32.init), Self.rotations.contains(where: { $0.days == rotation })
                else {
                    return try await overview(call, status: .badRequest, ["problem": "Choose one of the options offered."])
                }
                try console.requireRecentProof(call, "Changing the organization's security policy")
                var message = Rampart_V1_UpdateTenantRequest()
                message.mfaRequirement = requirement.value
                message.passwordRotationDays = rotation
                return try await saving(call, message, fields: ["mfa_requirement", "password_rotation_days"])
            }
        }

        let allowlist = router.group("/console/allowlist")
        allowlist.get { request, context in
            try await console.signedInPage(request, context) { call in try await allowlistPage(call) }
        }
        allowlist.post { request, context in
            let form = try await console.checkedForm(request, context)
            return try await console.signedInPage(request, context, returnTo: Self.allowlistPath) { call in
                let typed = form["cidrs"] ?? ""
                var message = Rampart_V1_IpAllowlist()
                message.cidrs = typed.split(whereSeparator: { $0.isNewline || $0 == "," || $0 == " " }).map(String.init)
                do {
                    _ = try await call.send(.put, "/v1/tenants/\(call.caller.tenant.hex)/ip-allowlist", message, as: Rampart_V1_IpAllowlist.self)
                    return ConsoleRoutes.seeOther(Self.allowlistPath + "?done=saved")
                } catch let refusal as ConsoleRefusal where refusal.status != .unauthorized {
                    var values = refusal.shown(["cidrs"])
                    values["typed"] = typed
                    return try await allowlistPage(call, status: refusal.status, values)
                }
            }
        }
    }

    /// The change, then the page saying so; or the page with the refusal by its field.
    private func saving(_ call: ConsoleCall, _ message: Rampart_V1_UpdateTenantRequest, fields: [String]) async throws -> Response {
        do {
            _ = try await call.send(.patch, "/v1/tenants/\(call.caller.tenant.hex)", message, as: Rampart_V1_Tenant.self)
            return ConsoleRoutes.seeOther(Self.path + "?done=saved")
        } catch let refusal as ConsoleRefusal where refusal.status != .unauthorized {
            return try await overview(call, status: refusal.status, refusal.shown(fields))
        }
    }

    private func overview(_ call: ConsoleCall, status: HTTPResponse.Status = .ok, _ values: [String: Any] = [:]) async throws -> Response {
        let tenant = try await call.get("/v1/tenants/\(call.caller.tenant.hex)", as: Rampart_V1_Tenant.self)
        var object: [String: Any] = [
            "name": tenant.name,
            "plan": tenant.plan,
            "plans": Self.plans.map { ["value": $0.0, "label": $0.1, "selected": $0.0 == tenant.plan] },
            "region": tenant.dataRegion,
            "country": tenant.country,
            "registration": tenant.registrationNumber,
            "created": SecurityPages.time(tenant.createdAtMs),
            "retention": tenant.policies.auditRetentionDays == 0 ? "Unlimited" : "\(tenant.policies.auditRetentionDays) days",
            "requirements": Self.mfaRequirements.map {
                ["value": $0.key, "label": $0.label, "checked": $0.value == tenant.policies.mfaRequirement]
            },
            "rotations": Self.rotations.map {
                ["days": Int($0.days), "label": $0.label, "selected": $0.days == tenant.policies.passwordRotationDays]
            },
        ]
        object["notice"] = call.notice(Self.notices)
        object.merge(values) { _, new in new }
        return try await console.page("organization", call, status: status, object)
    }

    private func allowlistPage(_ call: ConsoleCall, status: HTTPResponse.Status = .ok, _ values: [String: Any] = [:]) async throws -> Response {
        let list = try await call.get("/v1/tenants/\(call.caller.tenant.hex)/ip-allowlist", as: Rampart_V1_IpAllowlist.self)
        var object: [String: Any] = [
            "typed": list.cidrs.joined(separator: "\n"),
            "anywhere": list.cidrs.isEmpty,
            "address": call.context.clientIP ?? "unknown",
        ]
        object["notice"] = call.notice(Self.notices)
        object.merge(values) { _, new in new }
        return try await console.page("allowlist", call, status: status, object)
    }
}
