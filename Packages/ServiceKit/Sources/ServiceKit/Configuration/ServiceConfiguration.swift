public import Logging
public import NATSKit
public import RampartModels

/// What every service reads from its environment. `init(service:environment:)` lists every
/// missing or invalid variable in one `ConfigurationError`.
public struct ServiceConfiguration: Sendable {
    public struct Postgres: Sendable {
        public enum TLSMode: String, CaseIterable, Sendable { case disable, prefer, require }

        public var host: String
        public var port: Int
        public var user: String
        public var password: String?
        public var database: String
        public var tls: TLSMode
        public var caFile: String?

        public init(host: String, port: Int, user: String, password: String?, database: String, tls: TLSMode = .disable, caFile: String? = nil) {
            self.host = host
            self.port = port
            self.user = user
            self.password = password
            self.database = database
            self.tls = tls
            self.caFile = caFile
        }
    }

    public struct HTTP: Sendable {
        public var host: String
        /// 0 picks a free port (tests).
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    public var service: ServiceName
    public var instanceID: String
    public var logLevel: Logger.Level
    public var nats: NATSConfiguration
    /// nil for the services that own no database (gateway, rate-limit).
    public var postgres: Postgres?
    /// `/healthz`, `/readyz`, `/metrics`.
    public var ops: HTTP
    /// The public REST listener: the gateway's only.
    public var publicHTTP: HTTP?
    /// NATS requests handled at once by this instance; more are answered `unavailable`.
    public var maxRequestsInFlight: Int

    public init(
        service: ServiceName,
        instanceID: String,
        logLevel: Logger.Level = .info,
        nats: NATSConfiguration,
        postgres: Postgres?,
        ops: HTTP,
        publicHTTP: HTTP? = nil,
        maxRequestsInFlight: Int = 512
    ) {
        self.service = service
        self.instanceID = instanceID
        self.logLevel = logLevel
        self.nats = nats
        self.postgres = postgres
        self.ops = ops
        self.publicHTTP = publicHTTP
        self.maxRequestsInFlight = maxRequestsInFlight
    }

    /// Default ops port of each service, so that all eight can run on one machine.
    public static func defaultOpsPort(_ service: ServiceName) -> Int {
        switch service {
        case .auth: 9101
        case .tenants: 9102
        case .permissions: 9103
        case .audit: 9104
        case .rateLimit: 9105
        case .webhooks: 9106
        case .gateway: 9107
        case .mail: 9108
        }
    }

    /// Whether the service stores data in PostgreSQL (ARCHITECTURE "Data": rate-limit keeps its
    /// state in NATS key-value buckets; the gateway and mail keep none).
    public static func ownsDatabase(_ service: ServiceName) -> Bool {
        service != .gateway && service != .rateLimit && service != .mail
    }

    public init(service: ServiceName, environment: [String: String], reader: inout EnvironmentReader) {
        self.service = service
        let hostname = environment["HOSTNAME"] ?? "local"
        instanceID = reader.string("instance.id", default: "\(service.rawValue)-\(hostname)-\(ProcessID.current)")
        let level = reader.string("log.level", default: "info")
        if let parsed = Logger.Level(rawValue: level.lowercased()) {
            logLevel = parsed
        } else {
            reader.problem(
                "RAMPART_LOG_LEVEL must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")), not \(level.debugDescription)"
            )
            logLevel = .info
        }

        var nats = NATSConfiguration(
            servers: reader.list("nats.url", default: ["nats://127.0.0.1:4222"]),
            name: service.rawValue,
            user: reader.optionalString("nats.user"),
            password: reader.optionalString("nats.password", secret: true),
            credentialsFile: reader.optionalString("nats.credentials"),
            retryOnFailedConnect: true,
            jetStreamReplicas: reader.int("nats.replicas", default: 1, range: 1...5)
        )
        for server in nats.servers where !(server.hasPrefix("nats://") || server.hasPrefix("tls://")) {
            reader.problem("RAMPART_NATS_URL: \(server.debugDescription) must start with nats:// or tls://")
        }
        if nats.user != nil, nats.password == nil {
            reader.problem("RAMPART_NATS_PASSWORD is required with RAMPART_NATS_USER")
        }
        let caFile = reader.optionalString("nats.tls.ca")
        let certificate = reader.optionalString("nats.tls.cert")
        let key = reader.optionalString("nats.tls.key")
        if (certificate == nil) != (key == nil) {
            reader.problem("RAMPART_NATS_TLS_CERT and RAMPART_NATS_TLS_KEY go together")
        }
        if caFile != nil || certificate != nil || nats.servers.contains(where: { $0.hasPrefix("tls://") }) {
            nats.tls = NATSConfiguration.TLS(caFile: caFile, certificateFile: certificate, keyFile: key)
        }
        self.nats = nats

        if Self.ownsDatabase(service) {
            postgres = Postgres(
                host: reader.string("postgres.host", default: "127.0.0.1"),
                port: reader.int("postgres.port", default: 5432, range: 1...65535),
                user: reader.string("postgres.user", default: service.databaseName),
                password: reader.optionalString("postgres.password", secret: true),
                database: reader.string("postgres.database", default: service.databaseName),
                tls: reader.choice("postgres.tls", default: .disable),
                caFile: reader.optionalString("postgres.tls.ca")
            )
        } else {
            postgres = nil
        }
        ops = HTTP(
            host: reader.string("ops.host", default: "0.0.0.0"),
            port: reader.int("ops.port", default: Self.defaultOpsPort(service), range: 0...65535)
        )
        maxRequestsInFlight = reader.int("rpc.max-in-flight", default: 512, range: 1...100_000)
        if service == .gateway {
            publicHTTP = HTTP(
                host: reader.string("gateway.host", default: "0.0.0.0"),
                port: reader.int("gateway.port", default: 8080, range: 0...65535)
            )
        } else {
            publicHTTP = nil
        }
    }

    /// Reads the configuration of `service` from `environment`, throwing every problem at once.
    public static func fromEnvironment(_ service: ServiceName, environment: [String: String]) throws(ConfigurationError) -> ServiceConfiguration {
        var reader = EnvironmentReader(environment: environment)
        let configuration = ServiceConfiguration(service: service, environment: environment, reader: &reader)
        try reader.validate()
        return configuration
    }
}

enum ProcessID {
    static var current: Int32 { getpid() }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
