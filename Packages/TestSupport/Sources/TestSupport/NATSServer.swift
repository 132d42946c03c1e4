import Foundation

/// A real nats-server with JetStream, on a free loopback port, with its storage in a temporary
/// folder. Stopped and removed on `stop()` or deinit.
public final class NATSServer: @unchecked Sendable {
    public let port: Int
    public let storageDirectory: URL
    private let configFile: String?
    private let environment: [String: String]
    private var process: Process?
    private let lock = NSLock()

    public var url: String { "nats://127.0.0.1:\(port)" }
    /// Unique, so that the server found on `port` is known to be this one.
    private let name = "test-\(UUID().uuidString.prefix(12).lowercased())"

    /// Starts a server and waits until it accepts connections. `configFile` (with variables
    /// taken from `environment`) adds users and permissions; address, port and storage stay
    /// this instance's own.
    public static func start(configFile: String? = nil, environment: [String: String] = [:]) async throws -> NATSServer {
        // The free port can be taken before the server binds it (other suites bind port 0 and
        // connect out all the time): then the server exits, and another port is tried.
        for _ in 1..<5 {
            let server = NATSServer(port: Ports.free(), configFile: configFile, environment: environment)
            do {
                try await server.launch()
                return server
            } catch is PortTaken {
                continue
            }
        }
        let server = NATSServer(port: Ports.free(), configFile: configFile, environment: environment)
        try await server.launch()
        return server
    }

    private struct PortTaken: Error {}

    /// The password of each NATS user, for a server started with `startShipped()`.
    public private(set) var passwords: [String: String] = [:]

    /// The user a test connects as to a server started with `startShipped()`: no limits, as the
    /// operator who sets a deployment up.
    public static let testUser = "test"

    /// A server with the shipped `deploy/nats/nats-server.conf`: each service its own user
    /// (password in `passwords`), limited to its own subjects, and `testUser` besides.
    public static func startShipped() async throws -> NATSServer {
        let services = ["auth", "tenants", "permissions", "audit", "rate-limit", "webhooks", "gateway", "mail", testUser]
        let passwords = Dictionary(uniqueKeysWithValues: services.map { ($0, "pw\(UInt64.random(in: 0...UInt64.max))") })
        var environment: [String: String] = [:]
        for (service, password) in passwords {
            environment["RAMPART_NATS_PASSWORD_" + service.uppercased().replacingOccurrences(of: "-", with: "_")] = password
        }
        // The shipped files, with the test user added to the shipped ones.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-nats-conf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let shipped = repositoryRoot.appendingPathComponent("deploy/nats")
        try FileManager.default.copyItem(
            at: shipped.appendingPathComponent("nats-server.conf"),
            to: folder.appendingPathComponent("nats-server.conf")
        )
        var authorization = try String(contentsOf: shipped.appendingPathComponent("authorization.conf"), encoding: .utf8)
        guard let end = authorization.range(of: "\n  ]\n}", options: .backwards) else {
            throw TestInfrastructureError("deploy/nats/authorization.conf: no users list to add the test user to")
        }
        authorization.insert(contentsOf: "\n    { user: \(testUser), password: $RAMPART_NATS_PASSWORD_TEST }", at: end.lowerBound)
        try authorization.write(to: folder.appendingPathComponent("authorization.conf"), atomically: true, encoding: .utf8)
        let server = try await start(configFile: folder.appendingPathComponent("nats-server.conf").path, environment: environment)
        server.passwords = passwords
        return server
    }

    private init(port: Int, configFile: String?, environment: [String: String]) {
        self.port = port
        self.configFile = configFile
        self.environment = environment
        // Under `make test`'s work folder, whose cleanup also stops any server a crashed test left.
        let base =
            ProcessInfo.processInfo.environment["RAMPART_TEST_TMPDIR"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory
        storageDirectory = base.appendingPathComponent("rampart-nats-\(UUID().uuidString)")
    }

    deinit {
        terminate()
        try? FileManager.default.removeItem(at: storageDirectory)
    }

    private func launch() async throws {
        try FileManager.default.createDirectory(at: storageDirectory, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = try Executables.find("nats-server")
        process.arguments =
            (configFile.map { ["-c", $0] } ?? []) + ["-n", name, "-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storageDirectory.path]
            // RAMPART_TEST_NATS_TRACE=<folder>: every message of every test server logged there
            // (which JetStream API subjects each user needs, when authorization.conf changes).
            + (ProcessInfo.processInfo.environment["RAMPART_TEST_NATS_TRACE"].map { ["-V", "-l", "\($0)/\(port).log"] } ?? [])
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try ChildProcess.launch(process)
        lock.withLock { self.process = process }
        for _ in 0..<200 {
            guard process.isRunning else { throw PortTaken() }
            if speaksNATS(port: port, name: name) { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw TestInfrastructureError("nats-server did not start on port \(port)")
    }

    /// Stops the server (SIGTERM) and waits for it to exit.
    public func stop() async throws {
        try await offloaded { self.terminate() }
    }

    /// Starts it again on the same port with the same storage (JetStream state survives).
    public func restart() async throws {
        try await stop()
        try await launch()
    }

    private func terminate() {
        let process = lock.withLock {
            defer { self.process = nil }
            return self.process
        }
        guard let process, process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }
}

enum Executables {
    static func find(_ name: String) throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/bin", "/usr/local/bin"] {
            let candidate = URL(fileURLWithPath: directory).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw TestInfrastructureError("\(name) is not installed (make test installs it)")
    }
}
