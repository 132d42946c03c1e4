// UUID, trimming.
import Foundation
import HTTPTypes
import Hummingbird
import RampartModels
import ServiceKit

/// SSO (SSO-1…3), for who has `sso.manage`: the domains the organization proves by a DNS TXT
/// record; the connections with their presets, the redirect URI to register at the provider,
/// their test users and domains, and their way from draft through testing to active; then SSO
/// enforced for every member, with the break-glass owners who keep their password. Every
/// change needs a recent proof (the API asks it of connections and domains; the console of the
/// enforcement).
struct SSOPages {
    let console: ConsoleRoutes

    static let path = "/console/sso"

    static let notices = [
        "claimed": "The domain is claimed: publish its TXT record, then check it.",
        "verified": "The domain is verified.",
        "domain-removed": "The domain is removed.",
        "created": "The connection is added, as a draft: register its redirect URI at the provider, then start testing.",
        "saved": "Saved.",
        "testing": "The connection is testing: only its test users sign in through it.",
        "active": "The connection is active: every member signs in through it, and people of its domains join at their first sign-in.",
        "draft": "The connection is a draft again: nobody signs in through it.",
        "removed": "The connection is removed.",
        "enforced": "Saved.",
        "confirmed": "Thank you: you can make the change now.",
    ]

    static let presets = [
        ("oidc", "Other OpenID Connect provider"), ("google", "Google Workspace"), ("microsoft", "Microsoft Entra ID"), ("okta", "Okta"),
    ]

    func add(to router: Router<GatewayRequestContext>) {
        let sso = router.group("/console/sso")
        sso.get { request, context in
            try await console.signedInPage(request, context) { call in try await overview(call) }
        }
        action(sso, "domains") { call, form in
            var message = Rampart_V1_AddSsoDomainRequest()
            message.domain = (form["domain"] ?? "").trimmingCharacters(in: .whitespaces)
            _ = try await call.send(.post, tenantPath(call, "domains"), message, as: Rampart_V1_SsoDomainReply.self)
            return "claimed"
        }
        action(sso, "domains/verify") { call, form in
            _ = try await call.send(.post, tenantPath(call, "domains/\(try Self.domain(form))/verify"), as: Rampart_V1_SsoDomainReply.self)
            return "verified"
        }
        action(sso, "domains/remove") { call, form in
            _ = try await call.send(.delete, tenantPath(call, "domains/\(try Self.domain(form))"), as: Rampart_V1_SsoDomainReply.self)
            return "domain-removed"
        }
        action(sso, "connections") { call, form in
            var message = Rampart_V1_CreateSsoConnectionRequest()
            message.preset = form["preset"] ?? "oidc"
            message.issuer = (form["issuer"] ?? "").trimmingCharacters(in: .whitespaces)
            message.directory = (form["directory"] ?? "").trimmingCharacters(in: .whitespaces)
            message.clientID = (form["client_id"] ?? "").trimmingCharacters(in: .whitespaces)
            message.clientSecret = form["client_secret"] ?? ""
            message.domains = Self.list(form["domains"])
            message.testUsers = Self.list(form["test_users"])
            _ = try await call.send(.post, tenantPath(call, "sso/connections"), message, as: Rampart_V1_SsoConnectionReply.self)
            return "created"
        }
        action(sso, "connections/update") { call, form in
            var message = Rampart_V1_UpdateSsoConnectionRequest()
            message.connectionID = try Self.connection(form)
            message.domains = Self.list(form["domains"])
            message.setDomains = true
            message.testUsers = Self.list(form["test_users"])
            message.setTestUsers = true
            _ = try await call.send(
                .patch,
                tenantPath(call, "sso/connections/\(message.connectionID)"),
                message,
                as: Rampart_V1_SsoConnectionReply.self
            )
            return "saved"
        }
        action(sso, "connections/state") { call, form in
            guard let state = form["state"], ["draft", "testing", "active"].contains(state) else {
                throw ConsoleRefusal(status: .badRequest, detail: "Choose draft, testing or active.", errors: [:])
            }
            var message = Rampart_V1_UpdateSsoConnectionRequest()
            message.connectionID = try Self.connection(form)
            message.state = state
            _ = try await call.send(
                .patch,
                tenantPath(call, "sso/connections/\(message.connectionID)"),
                message,
                as: Rampart_V1_SsoConnectionReply.self
            )
            return state
        }
        action(sso, "connections/remove") { call, form in
            _ = try await call.send(.delete, tenantPath(call, "sso/connections/\(try Self.connection(form))"), as: Rampart_V1_SsoConnectionReply.self)
            return "removed"
        }
        action(sso, "enforcement") { call, form in
            try console.requireRecentProof(call, "Changing who must sign in with SSO")
            var message = Rampart_V1_UpdateTenantRequest()
            message.ssoEnforced = form["enforced"] == "on"
            message.breakGlassOwners = form.all("break_glass").compactMap { UUID(uuidString: $0)?.uuidString.lowercased() }
            message.setBreakGlassOwners = true
            _ = try await call.send(.patch, "/v1/tenants/\(call.caller.tenant.hex)", message, as: Rampart_V1_Tenant.self)
            return "enforced"
        }
    }

    /// A form of the page: `change` answers what was done (a notice), then the page says so;
    /// a refusal shows above the page (or the proof it needs is asked first).
    private func action(
        _ group: RouterGroup<GatewayRequestContext>,
        _ path: String,
        _ change: @escaping @Sendable (ConsoleCall, ConsoleForm.Fields) async throws -> String
    ) {
        group.post(RouterPath(path)) { request, context in
            let form = try await console.checkedForm(request, context)
            return try await console.signedInPage(request, context, returnTo: Self.path) { call in
                do {
                    return ConsoleRoutes.seeOther(Self.path + "?done=\(try await change(call, form))")
                } catch let refusal as ConsoleRefusal where refusal.status != .unauthorized {
                    // What was typed comes back, but the client secret.
                    let typed = Dictionary(form.pairs.filter { $0.name != "client_secret" }.map { ($0.name, $0.value) }) { first, _ in first }
                    return try await overview(call, status: refusal.status, ["problem": refusal.detail, "typed": typed])
                }
            }
        }
    }

    private func tenantPath(_ call: ConsoleCall, _ rest: String) -> String {
        "/v1/tenants/\(call.caller.tenant.hex)/\(rest)"
    }

    /// A domain of the form, as a path segment: letters, digits, dots and dashes only.
    static func domain(_ form: ConsoleForm.Fields) throws -> String {
        guard let domain = form["domain"], !domain.isEmpty, domain.utf8.count <= 253,
            domain.utf8.allSatisfy({ $0 == 0x2D || $0 == 0x2E || (0x30...0x39).contains($0) || (0x61...0x7A).contains($0) })
        else { throw ConsoleRefusal(status: .badRequest, detail: "That is not one of the domains listed here.", errors: [:]) }
        return domain
    }

    static func connection(_ form: ConsoleForm.Fields) throws -> String {
        guard let id = form["connection_id"].flatMap(UUID.init(uuidString:)) else {
            throw ConsoleRefusal(status: .badRequest, detail: "That is not one of the connections listed here.", errors: [:])
        }
        return id.uuidString.lowercased()
    }

    /// Addresses or domains as typed: separated by commas, spaces or lines.
    static func list(_ text: String?) -> [String] {
        (text ?? "").split(whereSeparator: { $0.isNewline || $0 == "," || $0 == " " }).map(String.init)
    }

    private func overview(_ call: ConsoleCall, status: HTTPResponse.Status = .ok, _ values: [String: Any] = [:]) async throws -> Response {
        async let domains = call.get(tenantPath(call, "domains"), as: Rampart_V1_ListSsoDomainsReply.self)
        async let connections = call.get(tenantPath(call, "sso/connections"), as: Rampart_V1_ListSsoConnectionsReply.self)
        async let tenant = call.get("/v1/tenants/\(call.caller.tenant.hex)", as: Rampart_V1_Tenant.self)
        async let members = call.get(tenantPath(call, "members"), as: Rampart_V1_ListMembersReply.self)
        let (domainList, connectionList, organization, memberList) = try await (domains, connections, tenant, members)
        let breakGlass = Set(organization.policies.breakGlassOwners)
        var object: [String: Any] = [
            "domains": domainList.domains.map { domain -> [String: Any] in
                [
                    "domain": domain.domain, "verified": domain.state == "verified", "recordName": domain.recordName,
                    "recordValue": domain.recordValue, "since": SecurityPages.time(domain.verifiedAtMs),
                ]
            },
            "hasDomains": !domainList.domains.isEmpty,
            "connections": connectionList.connections.map { connection -> [String: Any] in
                [
                    "id": connection.connectionID,
                    "preset": Self.presets.first { $0.0 == connection.preset }?.1 ?? connection.preset,
                    "issuer": connection.issuer,
                    "clientID": connection.clientID,
                    "redirectURI": connection.redirectUri,
                    "domains": connection.domains.joined(separator: ", "),
                    "testUsers": connection.testUsers.joined(separator: ", "),
                    "state": connection.state,
                    "draft": connection.state == "draft",
                    "testing": connection.state == "testing",
                    "active": connection.state == "active",
                ]
            },
            "hasConnections": !connectionList.connections.isEmpty,
            "presets": Self.presets.map { ["value": $0.0, "label": $0.1] },
            "enforced": organization.policies.ssoEnforced,
            "owners": memberList.members.filter { $0.role == .owner && $0.status == .active }.map {
                ["id": $0.userID, "email": $0.email, "checked": breakGlass.contains($0.userID)]
            },
        ]
        object["notice"] = call.notice(Self.notices)
        object.merge(values) { _, new in new }
        return try await console.page("sso", call, status: status, object)
    }
}
