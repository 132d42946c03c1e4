import Foundation

/// The PostgreSQL cluster the tests use: the one `make test` starts in a temporary folder and
/// names in RAMPART_TEST_POSTGRES_HOST/PORT/USER. Each test gets a database of its own.
public enum TestPostgres {
    public struct Server: Sendable {
        public var host: String
        public var port: Int
        /// A superuser, for creating databases and roles.
        public var user: String
    }

    public static let server: Server = {
        let environment = ProcessInfo.processInfo.environment
        guard let host = environment["RAMPART_TEST_POSTGRES_HOST"], let port = environment["RAMPART_TEST_POSTGRES_PORT"].flatMap(Int.init) else {
            fatalError(
                "no test PostgreSQL: run the tests with `make test`, which starts one, or set RAMPART_TEST_POSTGRES_HOST and RAMPART_TEST_POSTGRES_PORT"
            )
        }
        return Server(host: host, port: port, user: environment["RAMPART_TEST_POSTGRES_USER"] ?? "postgres")
    }()

    /// Creates an empty database owned by a new login role of the same name; returns its name.
    /// The role's password is the name (loopback test cluster only).
    public static func createDatabase(prefix: String = "test") async throws -> String {
        let name = "\(prefix)_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16))"
        try await psql("CREATE ROLE \(name) LOGIN PASSWORD '\(name)'")
        try await psql("CREATE DATABASE \(name) OWNER \(name)")
        return name
    }

    /// Runs SQL as the superuser, in `database` (default `postgres`); returns psql's output.
    @discardableResult
    public static func psql(_ sql: String, database: String = "postgres") async throws -> String {
        try await offloaded { try blockingPSQL(sql, database: database) }
    }

    private static func blockingPSQL(_ sql: String, database: String) throws -> String {
        let (status, text, errorText) = try ChildProcess.run(
            try Executables.find("psql"),
            [
                "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", server.host, "-p", String(server.port), "-U", server.user, "-d", database,
                "-c", sql,
            ]
        )
        guard status == 0 else { throw TestInfrastructureError("psql failed: \(errorText)") }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// The nats-server most tests share: the one `make test` started (RAMPART_TEST_NATS_URL), or
/// one started for this process. Tests that stop or restart a server start their own.
public enum TestNATS {
    public static func url() async throws -> String {
        if let url = ProcessInfo.processInfo.environment["RAMPART_TEST_NATS_URL"] { return url }
        return try await Shared.instance.server().url
    }

    private actor Shared {
        static let instance = Shared()
        private var started: NATSServer?

        func server() async throws -> NATSServer {
            if let started { return started }
            let server = try await NATSServer.start()
            started = server
            return server
        }
    }
}
