import Foundation
import Logging
import NATSKit
import RampartModels
import ServiceKit
import SodiumKit
import TestSupport

/// The streams two services share, which only their owners create (tenants and audit): as an
/// operator would have, so a bench may start any service alone.
func ensureSharedStreams(_ natsURL: String, logger: Logger) async throws {
    let connection = try await NATSConnection.connect(NATSConfiguration(servers: [natsURL], name: "bench-setup"), logger: logger)
    try await connection.jetStream().ensureSharedStreams()
    await connection.close()
}

/// Starts the release executables of `services` on `natsURL`, each data owner with a fresh
/// database of its own, their ops ports free ones; `environment` adds or overrides variables
/// per service.
/// The mail sender's token keys of every bench run: auth and tenants seal to the public half,
/// and the bench opens the tokens it spends as the sender would.
let benchMailTokenKeys = try! SealedBox.SecretKeys(parsing: SealedBox.SecretKeys.generate(id: "bench-1"))

/// The account token `mail` carries, opened as the mail sender does.
func mailToken(_ mail: Rampart_V1_MailRequest, from publisher: ServiceName) throws -> String {
    guard let token = try MailTokens.open(mail, publishedBy: publisher.subjectToken, with: benchMailTokenKeys) else {
        throw TestInfrastructureError("the \(mail.template) mail carries no token")
    }
    return token
}

func launchServices(
    _ services: [String],
    bin: String,
    natsURL: String,
    environment extra: [String: [String: String]] = [:]
) async throws -> [Process] {
    var processes: [Process] = []
    for service in services {
        var environment = [
            "RAMPART_NATS_URL": natsURL, "RAMPART_OPS_HOST": "127.0.0.1", "RAMPART_OPS_PORT": String(Ports.free()),
            "RAMPART_LOG_LEVEL": "warning", "RAMPART_INSTANCE_ID": "\(service)-bench",
        ]
        if !["rate-limit", "gateway"].contains(service) {
            let database = try await TestPostgres.createDatabase(prefix: "rampart_bench_\(service.replacingOccurrences(of: "-", with: "_"))")
            environment.merge([
                "RAMPART_POSTGRES_HOST": TestPostgres.server.host, "RAMPART_POSTGRES_PORT": String(TestPostgres.server.port),
                "RAMPART_POSTGRES_USER": database, "RAMPART_POSTGRES_PASSWORD": database, "RAMPART_POSTGRES_DATABASE": database,
            ]) { $1 }
        }
        if service == "audit" { environment["RAMPART_AUDIT_SIGNING_KEY"] = "bench-1:" + Base64.encode(randomBytes(32)) }
        if service == "auth" { environment["RAMPART_AUTH_KEY_ENCRYPTION_KEYS"] = "bench-1:" + Base64.encode(randomBytes(32)) }
        if service == "webhooks" { environment["RAMPART_WEBHOOKS_KEY_ENCRYPTION_KEYS"] = "bench-1:" + Base64.encode(randomBytes(32)) }
        if service == "auth" || service == "tenants" { environment["RAMPART_MAIL_TOKEN_PUBLIC_KEY"] = benchMailTokenKeys.currentPublicKey.text }
        environment.merge(extra[service] ?? [:]) { $1 }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "\(bin)/\(service)")
        process.environment = environment
        process.standardOutput = FileHandle.standardError
        try process.run()
        processes.append(process)
    }
    return processes
}

/// Waits (up to 20 s) until each of `services` answers its health subject healthy.
func waitUntilHealthy(_ services: [String], rpc: RPCClient) async throws {
    for service in services.compactMap(ServiceName.init(rawValue:)) {
        var healthy = false
        for _ in 0..<1_000 where !healthy {
            let reply = try? await rpc.call(
                Subjects.health(service),
                Rampart_V1_HealthRequest(),
                context: CallContext()
            )
            healthy = reply?.healthy == true
            if !healthy { try await Task.sleep(for: .milliseconds(20)) }
        }
        guard healthy else { throw TestInfrastructureError("\(service) did not start") }
    }
}

/// A rate-limit policies file lifting RL-1's `api` limit (60 a minute per address) for a bench
/// that calls the gateway from one address far more often: GCRA, as for any large limit, so that
/// each request still takes its round trip to rate-limit. The caller removes it.
func liftedAPIPolicyFile() throws -> URL {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("bench-policies-\(UUID().uuidString).json")
    try Data(#"{"policies":[{"name":"api","algorithm":"gcra","limit":1000000,"window_seconds":60}]}"#.utf8).write(to: file)
    return file
}

/// Release services on a nats-server of their own, healthy, and a client connection to them.
struct BenchCluster {
    let nats: NATSServer
    let processes: [Process]
    let connection: NATSConnection
    let rpc: RPCClient

    static func start(
        _ services: [String],
        bin: String,
        environment: [String: [String: String]] = [:],
        logger: Logger
    ) async throws -> BenchCluster {
        let nats = try await NATSServer.start()
        try await ensureSharedStreams(nats.url, logger: logger)
        let processes = try await launchServices(services, bin: bin, natsURL: nats.url, environment: environment)
        let connection = try await NATSConnection.connect(NATSConfiguration(servers: [nats.url]), logger: logger)
        let rpc = RPCClient(connection: connection)
        try await waitUntilHealthy(services, rpc: rpc)
        return BenchCluster(nats: nats, processes: processes, connection: connection, rpc: rpc)
    }

    /// Stops the client, the services (SIGKILL: nothing of theirs is measured any more) and
    /// the server.
    func stop() async throws {
        await connection.drain()
        for process in processes { kill(process.processIdentifier, SIGKILL) }
        for process in processes { process.waitUntilExit() }
        try await nats.stop()
    }

    /// Registers an owner and their organization's tenant from 198.51.100.7, and signs them in
    /// once the tenant is active: the registration, the sign-in request and its tokens.
    /// Spends the verification token mailed to `email`, as its link would (AUTH-11: an API key
    /// needs a verified address).
    func verify(_ email: String) async throws {
        let consumer = try await connection.jetStream().durableConsumer(
            stream: Subjects.eventsStream,
            .init(durableName: "bench-\(UUID().uuidString.prefix(8))", filterSubject: Subjects.MailEvents.requested(by: .auth))
        )
        defer { consumer.unsubscribe() }
        var token: String?
        while token == nil, let batch = try? await consumer.fetch(batch: 100, timeout: .seconds(2)), !batch.isEmpty {
            for message in batch {
                let mail = try Rampart_V1_MailRequest(serializedBytes: message.payload)
                if mail.template == "email_verification", mail.to == email { token = try mailToken(mail, from: .auth) }
                try await message.ack()
            }
        }
        guard let token else { throw TestInfrastructureError("no verification mail for \(email)") }
        var request = Rampart_V1_VerifyEmailRequest()
        request.token = token
        _ = try await rpc.call(Subjects.Auth.verifyEmail, request, context: CallContext(timeout: .seconds(30)))
    }

    func signUp(
        email: String,
        organization: String
    ) async throws -> (registered: Rampart_V1_RegisterReply, login: Rampart_V1_LoginRequest, tokens: Rampart_V1_TokenReply) {
        var registration = Rampart_V1_RegisterRequest()
        registration.email = email
        registration.password = "Tr0ub4dor&3xkcd!"
        registration.name = "Bench"
        registration.organization.name = organization
        registration.organization.country = "US"
        registration.organization.registrationNumber = "94-2404110"
        let registered = try await rpc.call(
            Subjects.Auth.register,
            registration,
            context: CallContext(clientIP: "198.51.100.7", timeout: .seconds(30))
        )
        try await verify(email)
        var login = Rampart_V1_LoginRequest()
        login.email = email
        login.password = registration.password
        for _ in 0..<500 {
            // Refused until the tenant is active.
            if let tokens = try? await rpc.call(
                Subjects.Auth.login,
                login,
                context: CallContext(clientIP: "198.51.100.7", timeout: .seconds(60))
            ) {
                return (registered, login, tokens)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestInfrastructureError("the bench account \(email) never signed in")
    }
}
