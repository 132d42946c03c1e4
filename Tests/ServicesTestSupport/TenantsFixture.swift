import AuditService
import AuthService
import Foundation
import GatewayService
import MailService
import NATSKit
import PermissionsService
import RampartModels
import RateLimitKit
import RateLimitService
import ServiceKit
import SodiumKit
import SwiftProtobuf
import TestSupport
import Testing
import WebhooksService

@testable import TenantsService

/// Every data-owning service, each on a database of its own, plus rate-limit, on one
/// nats-server: what the tenant sagas need to run for real.
package final class TenantsCluster: @unchecked Sendable {
    package let nats: NATSServer
    package let client: NATSConnection
    /// Database name per data-owning service.
    package let databases: [ServiceName: String]
    package let settings: TenantsSettings
    package var authSettings: AuthSettings
    package var gatewaySettings = GatewaySettings()
    /// webhooks as a test needs it: its settings, a clock to move by hand, a resolver's answers.
    package var webhooksSettings = WebhooksSettings()
    package var webhooksClock = DeliveryClock.wall
    package var webhooksResolver: DestinationGuard.Resolver = SystemResolver.addresses
    /// mail as a test needs it: by default into a folder of the test's own.
    package lazy var mailSettings = MailSettings(
        delivery: .directory(FileManager.default.temporaryDirectory.appendingPathComponent("mail-\(UUID().uuidString)").path),
        from: EmailAddress("no-reply@rampart.example")!,
        retrySeconds: [1, 1]
    )
    package let rateLimitSettings: RateLimitSettings
    /// Tests only: the shipped default cost is 12.
    package static let testAuthSettings = AuthSettings(passwordAlgorithm: .bcrypt(cost: 4))
    /// As `testAuthSettings`, with SSO providers on loopback allowed, as `make run` has them.
    package static var ssoAuthSettings: AuthSettings {
        var settings = testAuthSettings
        settings.ssoAllowedNetworks = [IPNetwork(cidr: "127.0.0.0/8")!]
        return settings
    }
    private(set) var running: [ServiceName: RunningService] = [:]
    package let lock = NSLock()

    package static let dataOwners: [ServiceName] = [.auth, .tenants, .permissions, .audit, .webhooks]

    /// Gateway tests send far more than RL-1's 60 requests a minute from 127.0.0.1: the `api`
    /// policy is lifted (the suite that tests it sets its own).
    package static func liftedAPILimit(_ settings: RateLimitSettings = RateLimitSettings()) -> RateLimitSettings {
        var settings = settings
        settings.policies["api"] = RateLimitPolicy(name: "api", key: .ip, limit: 1_000_000, windowSeconds: 60, algorithm: .gcra)
        return settings
    }

    /// For tests that sign in (or fail to) many times from 127.0.0.1: the sign-in limits lifted
    /// as well, and the address never banned. The limits and bans have tests of their own.
    package static func liftedSignInLimits() -> RateLimitSettings {
        var policies = RateLimitPolicy.defaults.filter { !["login", "login_account", "login_device", "account_proof"].contains($0.name) }
        policies += [
            RateLimitPolicy(name: "login", key: .ip, limit: 1000, windowSeconds: 60),
            RateLimitPolicy(name: "login_account", key: .account, limit: 1000, windowSeconds: 900),
            RateLimitPolicy(name: "login_device", key: .account, limit: 1000, windowSeconds: 900),
            RateLimitPolicy(name: "account_proof", key: .account, limit: 1000, windowSeconds: 900),
        ]
        return liftedAPILimit(RateLimitSettings(policies: policies, allowlist: [IPNetwork(cidr: "127.0.0.1/32")!]))
    }

    /// Sign-in and registration limits lifted: one test registers five organizations.
    package static func liftedRegistrationLimits() -> RateLimitSettings {
        var settings = TenantsCluster.liftedSignInLimits()
        settings.policies["register"] = RateLimitPolicy(name: "register", key: .ip, limit: 100, windowSeconds: 3600)
        settings.policies["register_daily"] = RateLimitPolicy(name: "register_daily", key: .ip, limit: 100, windowSeconds: 86_400)
        return settings
    }

    package static func start(
        settings: TenantsSettings = TenantsSettings(),
        authSettings: AuthSettings = testAuthSettings,
        rateLimitSettings: RateLimitSettings = liftedAPILimit(),
        without: Set<ServiceName> = []
    ) async throws -> TenantsCluster {
        // The shipped NATS users: every service of every cluster test runs with its own rights.
        let nats = try await NATSServer.startShipped()
        var databases: [ServiceName: String] = [:]
        for service in dataOwners {
            databases[service] = try await TestPostgres.createDatabase(prefix: "rampart_\(service.subjectToken)")
        }
        let client = try await NATSConnection.connect(
            NATSConfiguration(servers: [nats.url], name: "test-client", user: NATSServer.testUser, password: nats.passwords[NATSServer.testUser]),
            logger: quietLogger()
        )
        let cluster = TenantsCluster(
            nats: nats,
            client: client,
            databases: databases,
            settings: settings,
            authSettings: authSettings,
            rateLimitSettings: rateLimitSettings
        )
        for service in [ServiceName.rateLimit] + dataOwners where !without.contains(service) {
            try await cluster.start(service)
        }
        return cluster
    }

    private init(
        nats: NATSServer,
        client: NATSConnection,
        databases: [ServiceName: String],
        settings: TenantsSettings,
        authSettings: AuthSettings,
        rateLimitSettings: RateLimitSettings
    ) {
        self.nats = nats
        self.client = client
        self.databases = databases
        self.settings = settings
        self.authSettings = authSettings
        self.rateLimitSettings = rateLimitSettings
    }

    package let auditKey = SigningKey.generate()
    /// The gateway's public port, once `start(.gateway)` has it listening.
    package let gatewayPort = ListeningPort()
    /// The port the gateway listens on: 0 for any free one; a test whose links must name the
    /// gateway before it starts (the SSO redirect URI in auth's settings) chooses it.
    package var gatewayListenPort = 0

    /// The mail sender's token keys in every cluster: auth and tenants seal to its public half,
    /// and tests open what they sealed as the sender does (`mails(from:)`).
    package static let mailTokenKeys = try! SealedBox.SecretKeys(parsing: SealedBox.SecretKeys.generate(id: "test-1"))

    package func descriptor(_ service: ServiceName) -> ServiceDescriptor {
        var authSettings = authSettings
        authSettings.mailTokenKey = Self.mailTokenKeys.currentPublicKey
        var settings = settings
        settings.mailTokenKey = Self.mailTokenKeys.currentPublicKey
        var mailSettings = mailSettings
        mailSettings.tokenKeys = Self.mailTokenKeys
        return switch service {
        case .auth: AuthService.descriptor(settings: authSettings)
        case .tenants: TenantsService.descriptor(settings: settings)
        case .permissions: PermissionsService.descriptor()
        case .audit: AuditService.descriptor(settings: AuditSettings(signingKey: auditKey))
        case .webhooks: WebhooksService.descriptor(settings: webhooksSettings, clock: webhooksClock, resolver: webhooksResolver)
        case .rateLimit: RateLimitService.descriptor(settings: rateLimitSettings)
        case .gateway: GatewayService.descriptor(settings: gatewaySettings, publicPort: gatewayPort)
        case .mail: MailService.descriptor(settings: mailSettings)
        }
    }

    package func start(_ service: ServiceName) async throws {
        let instance = try await RunningService.start(
            descriptor(service),
            nats: nats,
            instance: "\(service.rawValue)-1",
            database: databases[service],
            publicHTTP: service == .gateway ? .init(host: "127.0.0.1", port: gatewayListenPort) : nil
        )
        lock.withLock { running[service] = instance }
    }

    /// Another replica of `service`, on the same NATS and database; the caller stops it.
    package func startReplica(_ service: ServiceName, number: Int) async throws -> RunningService {
        try await RunningService.start(descriptor(service), nats: nats, instance: "\(service.rawValue)-\(number)", database: databases[service])
    }

    /// Another gateway on the same NATS, listening on a port of its own: the second replica a
    /// revocation must reach. Returns the replica (the caller stops it) and its port.
    package func startGatewayReplica(number: Int = 2) async throws -> (RunningService, Int) {
        let port = ListeningPort()
        let replica = try await RunningService.start(
            GatewayService.descriptor(settings: gatewaySettings, publicPort: port),
            nats: nats,
            instance: "gateway-\(number)",
            publicHTTP: .init(host: "127.0.0.1", port: 0)
        )
        return (replica, await port.wait())
    }

    package func stop(_ service: ServiceName) async {
        guard let instance = lock.withLock({ running.removeValue(forKey: service) }) else { return }
        await instance.stop()
    }

    package func stop() async {
        for service in lock.withLock({ Array(running.keys) }) { await stop(service) }
        await client.drain()
    }

    // MARK: Calls

    package func call<Request, Reply>(
        _ endpoint: RPCEndpoint<Request, Reply>,
        _ request: Request,
        tenant: TenantID? = nil,
        principal: String? = nil,
        ip: String? = "203.0.113.10"
    ) async throws -> Reply {
        try await RPCClient(connection: client).call(
            endpoint,
            request,
            context: CallContext(tenantID: tenant, principal: try principal.map(Principal.parse), clientIP: ip, timeout: .seconds(30))
        )
    }

    /// A sign-up as auth makes it: a new user ID, the organization, the owner's address.
    package func register(
        email: String = "owner-\(UUID().uuidString.prefix(8).lowercased())@acme-\(UUID().uuidString.prefix(6).lowercased()).example",
        country: String = "FR",
        number: String = "73282932000074",
        plan: String = "",
        name: String = "Acme",
        ip: String = "203.0.113.10"
    ) async throws -> (tenant: Rampart_V1_Tenant, owner: String) {
        var request = Rampart_V1_RegisterTenantRequest()
        request.organization.name = name
        request.organization.country = country
        request.organization.registrationNumber = number
        request.ownerUserID = UUID().uuidString.lowercased()
        request.ownerEmail = email
        request.plan = plan
        // As auth does: admitted first (the checks and the per-IP limits), then registered.
        var admission = Rampart_V1_AdmitRegistrationRequest()
        admission.organization = request.organization
        admission.ownerEmail = email
        admission.plan = plan
        let _: Rampart_V1_AdmitRegistrationReply = try await call(Subjects.Tenants.admitRegistration, admission, principal: "system:auth", ip: ip)
        let reply: Rampart_V1_RegisterTenantReply = try await call(Subjects.Tenants.register, request, principal: "system:auth", ip: ip)
        return (reply.tenant, "user:\(request.ownerUserID)")
    }

    /// A user who joins `tenant` with `role`: invited by `invitedBy`, accepted as `user` (a new
    /// ID by default). Returns the user's principal.
    @discardableResult
    package func addMember(
        to tenant: TenantID,
        role: Rampart_V1_MemberRole = .member,
        invitedBy: String,
        user: String = "user:\(UUID().uuidString.lowercased())",
        email: String = "\(UUID().uuidString.prefix(8).lowercased())@acme.example"
    ) async throws -> String {
        var invite = Rampart_V1_InviteMemberRequest()
        invite.email = email
        invite.role = role
        let _: Rampart_V1_InviteMemberReply = try await call(Subjects.Tenants.inviteMember, invite, tenant: tenant, principal: invitedBy)
        var accept = Rampart_V1_AcceptInvitationRequest()
        accept.token = try await invitationToken(to: email, in: tenant)
        accept.email = email
        accept.userID = String(user.dropFirst(5))
        let _: Rampart_V1_AcceptInvitationReply = try await call(Subjects.Tenants.acceptInvitation, accept, principal: "system:auth")
        return user
    }

    /// Every mail queued so far by `publisher` for the mail sender, oldest first, with the token
    /// the sender opens from each.
    package func mails(from publisher: ServiceName = .tenants) async throws -> [QueuedMail] {
        try await events(Subjects.MailEvents.requested(by: publisher), as: Rampart_V1_MailRequest.self).map { request in
            QueuedMail(request: request, token: try MailTokens.open(request, publishedBy: publisher.subjectToken, with: Self.mailTokenKeys) ?? "")
        }
    }

    /// The reset link mailed to `email` for the reset `request` asks: the mail leaves after the
    /// answer (issue 26, finding 13), so this waits for one more than there was before.
    package func resetMail(to email: String, _ request: () async throws -> Void) async throws -> QueuedMail {
        func resets() async throws -> [QueuedMail] {
            try await mails(from: .auth).filter { $0.template == "password_reset" && $0.to == email.lowercased() }
        }
        let before = try await resets().count
        try await request()
        var found: QueuedMail?
        _ = try await eventually(within: .seconds(10)) {
            let now = try await resets()
            found = now.count > before ? now.last : nil
            return found != nil
        }
        return try #require(found, "no reset mail reached \(email)")
    }

    /// The token of the newest invitation mailed to `email` for `tenant`: what the invitee's
    /// mailbox holds, and the only place the token goes.
    package func invitationToken(to email: String, in tenant: TenantID) async throws -> String {
        let mail = try await mails().last { $0.template == "invitation" && $0.to == email.lowercased() && $0.tenantID == tenant.hex }
        return try #require(mail).token
    }

    package func tenant(_ id: String, as principal: String = "system:gateway") async throws -> Rampart_V1_Tenant {
        try await call(Subjects.Tenants.get, Rampart_V1_GetTenantRequest(), tenant: TenantID(id), principal: principal)
    }

    /// Waits for the saga to bring the tenant to `status`.
    package func waitFor(_ status: Rampart_V1_TenantStatus, _ id: String, within limit: Duration = .seconds(20)) async throws -> Bool {
        try await eventually(within: limit) {
            let registry = try await TestPostgres.psql("SELECT status FROM tenants WHERE id = '\(id)'", database: databases[.tenants]!)
            return registry == status.name
        }
    }

    package func schemaExists(_ tenant: String, in service: ServiceName) async throws -> Bool {
        try await TestPostgres.psql("SELECT count(*) FROM pg_namespace WHERE nspname = 't_\(tenant)'", database: databases[service]!) == "1"
    }

    /// Every event published so far on `subject` (a fresh read each time): domain events, or
    /// audit events with `stream: Subjects.auditStream`.
    package func events<Event: SwiftProtobuf.Message>(
        _ subject: String,
        as: Event.Type,
        stream: String = Subjects.eventsStream
    ) async throws -> [Event] {
        try await payloads(subject, stream: stream).map { try Event(serializedBytes: $0) }
    }

    /// The bytes of every message on `subject` (a filter) in `stream` so far, oldest first: what
    /// any consumer of the stream can read.
    package func payloads(_ subject: String, stream: String = Subjects.eventsStream) async throws -> [[UInt8]] {
        let jetStream = try client.jetStream()
        let consumer = try await jetStream.durableConsumer(
            stream: stream,
            .init(durableName: "test-\(UUID().uuidString.prefix(8))", filterSubject: subject)
        )
        defer { consumer.unsubscribe() }
        var payloads: [[UInt8]] = []
        while let batch = try? await consumer.fetch(batch: 100, timeout: .milliseconds(500)), !batch.isEmpty {
            for message in batch {
                payloads.append(message.payload)
                try await message.ack()
            }
        }
        return payloads
    }

    /// What auth's revocations bucket holds now (every gateway's revocation list).
    package func revocations() async throws -> [Rampart_V1_Revocation] {
        try await entries(of: Subjects.Auth.revocationsBucket, as: Rampart_V1_Revocation.self)
    }

    /// Every ban record in rate-limit's bucket now (in force or not).
    package func bans() async throws -> [Rampart_V1_Ban] {
        try await entries(of: Subjects.RateLimit.bansBucket, as: Rampart_V1_Ban.self)
    }

    /// The values a key-value bucket holds now, decoded.
    package func entries<Value: SwiftProtobuf.Message>(of bucket: String, as: Value.Type) async throws -> [Value] {
        let bucket = try await client.jetStream().keyValue(bucket)
        var found: [Value] = []
        for try await event in try await bucket.watch() {
            switch event {
            case .entry(let entry): found.append(try Value(serializedBytes: entry.value))
            case .caughtUp: return found
            }
        }
        return found
    }
}

/// A queued mail as its recipient reads it: the request's fields, and the token of its link
/// (empty when it has none).
@dynamicMemberLookup
package struct QueuedMail {
    package let request: Rampart_V1_MailRequest
    package let token: String

    package subscript<Value>(dynamicMember field: KeyPath<Rampart_V1_MailRequest, Value>) -> Value { request[keyPath: field] }
}

extension Principal {
    /// A test's principal, written as the header carries it: it must be one.
    package static func parse(_ text: String) throws -> Principal {
        guard let principal = Principal(text) else { throw TestInfrastructureError("not a principal: \(text)") }
        return principal
    }
}
