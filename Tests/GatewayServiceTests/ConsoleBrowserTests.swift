import GatewayService
import ServiceKit
import ServicesTestSupport
import TestSupport
import Testing
import WebhooksService

/// UI-1's journeys in headless Chromium, against the real services: each walks pages as a
/// person does, saves a screenshot of each (`.build/test-output/console`), checks each with
/// axe-core, then checks every console response's CSP and every URL the browser asked for.
/// One browser at a time: two Chromiums on two cores slow every other suite down.
@Suite("UI-1 console in a real browser", .serialized)
struct ConsoleBrowserTests {
    @Test("Settings → Security: MFA on by its QR code, backup codes kept, sign-in with a code and a backup code, MFA off")
    func securitySettings() async throws {
        let world = try await GatewayWorld.start(rateLimitSettings: TenantsCluster.liftedSignInLimits())
        try await stopping(world.cluster) {
            try await BrowserJourney.walk("security_settings", port: world.port, ["email": "ada@lovelace.example", "password": HTTP.password])
        }
    }

    @Test("API keys: a new key after re-authentication, used by a program, the 90-day filter, rotation with grace, revocation")
    func apiKeys() async throws {
        let world = try await GatewayWorld.start(gateway: GatewaySettings(stepUpSeconds: 4))
        try await stopping(world.cluster) {
            try await BrowserJourney.walk(
                "api_keys",
                port: world.port,
                ["email": "ada@lovelace.example", "password": HTTP.password, "step_up_seconds": 4]
            )
        }
    }

    @Test(
        "A team forms: sign-up, the mail's link, invitations accepted by a new person and by a signed-in one, roles, a member disabled, a reset, the switcher"
    )
    func team() async throws {
        let world = try await GatewayWorld.start(rateLimitSettings: TenantsCluster.liftedSignInLimits())
        try await stopping(world.cluster) {
            // The mail service writes each mail as a file, with the links a person clicks.
            world.cluster.mailSettings.publicURL = "http://127.0.0.1:\(world.port)"
            try await world.cluster.start(.mail)
            guard case .directory(let folder) = world.cluster.mailSettings.delivery else { throw TestInfrastructureError("mail goes to a folder") }
            try await BrowserJourney.walk(
                "team",
                port: world.port,
                [
                    "mail_folder": folder, "owner": "grace@acme.example", "colleague": "lin@acme.example", "member": "ada@lovelace.example",
                    "password": HTTP.password,
                ]
            )
        }
    }

    @Test("Organization and IP allowlist: name and policy saved, a lock-out refused, a sign-in from elsewhere refused")
    func organization() async throws {
        // Behind a trusted proxy (loopback), so that a browser can come from elsewhere.
        let gateway = GatewaySettings(trustedProxies: [IPNetwork(cidr: "127.0.0.1/32")!])
        let world = try await GatewayWorld.start(rateLimitSettings: TenantsCluster.liftedSignInLimits(), gateway: gateway)
        try await stopping(world.cluster) {
            try await BrowserJourney.walk("organization", port: world.port, ["email": "ada@lovelace.example", "password": HTTP.password])
        }
    }

    @Test("Audit log: a failed sign-in found by action and outcome, exported as CSV and JSON lines, the chain verified")
    func auditLog() async throws {
        let world = try await GatewayWorld.start(rateLimitSettings: TenantsCluster.liftedSignInLimits())
        try await stopping(world.cluster) {
            try await BrowserJourney.walk("audit_log", port: world.port, ["email": "ada@lovelace.example", "password": HTTP.password])
        }
    }

    @Test("Webhooks: an endpoint added, its secret checked on a test event, the delivery log, a redelivery, a rotation, removal")
    func webhooks() async throws {
        let world = try await GatewayWorld.start(webhooks: WebhooksSettings(allowedNetworks: [IPNetwork(cidr: "127.0.0.1/32")!]))
        try await stopping(world.cluster) {
            try await BrowserJourney.walk("webhooks", port: world.port, ["email": "ada@lovelace.example", "password": HTTP.password])
        }
    }

    @Test("SSO: a domain verified by its TXT record, a connection tested by one person who signs in through the provider, activated, required")
    func sso() async throws {
        let dns = try await DNSPeer.start()
        defer { dns.stop() }
        let provider = try await MockOpenIDProvider.start()
        defer { provider.stop() }
        var settings = TenantsCluster.ssoAuthSettings
        settings.dnsServer = ("127.0.0.1", dns.peer.port)
        // The provider sends the browser back to the redirect URI: this gateway's.
        let port = Ports.free()
        settings.publicURL = "http://127.0.0.1:\(port)"
        let world = try await GatewayWorld.start(
            authSettings: settings,
            rateLimitSettings: TenantsCluster.liftedSignInLimits(),
            gatewayPort: port
        )
        try await stopping(world.cluster) {
            try await provider.setUser("ada-sub", claims: ["email": "ada@lovelace.example", "email_verified": true, "name": "Ada"])
            try await BrowserJourney.walk(
                "sso",
                port: world.port,
                [
                    "email": "ada@lovelace.example", "password": HTTP.password, "issuer": provider.issuer, "subject": "ada-sub",
                    "dns_records": dns.records.path,
                ]
            )
        }
    }

    @Test("MFA required by the organization: the sign-in leads through setting it up, shows the backup codes, opens the session")
    func mfaRequired() async throws {
        let world = try await GatewayWorld.start(rateLimitSettings: TenantsCluster.liftedSignInLimits())
        try await stopping(world.cluster) {
            let required = try await world.send(
                "PATCH",
                "/v1/tenants/\(world.tenant)",
                #"{"mfa_requirement":"MFA_REQUIREMENT_EVERYONE"}"#,
                token: world.adaToken
            )
            #expect(required.status == 200, "\(required.body)")
            try await BrowserJourney.walk("mfa_required", port: world.port, ["email": "ada@lovelace.example", "password": HTTP.password])
        }
    }

    @Test("A sign-in with the keyboard alone; another site's form is refused (CSRF) and its frame does not show the console")
    func hostilePages() async throws {
        let world = try await GatewayWorld.start()
        try await stopping(world.cluster) {
            try await BrowserJourney.walk("hostile_pages", port: world.port, ["email": "ada@lovelace.example", "password": HTTP.password])
        }
    }
}
