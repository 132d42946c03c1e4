/// How to reach and authenticate to NATS. Secrets never appear in `description`.
public struct NATSConfiguration: Sendable, CustomStringConvertible {
    public struct TLS: Sendable {
        /// PEM file of the certificate authorities trusted for the server's certificate.
        public var caFile: String?
        /// PEM certificate chain and key, for mutual TLS.
        public var certificateFile: String?
        public var keyFile: String?
        /// Server name to verify, when it differs from the host in the URL.
        public var expectedHostname: String?

        public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, expectedHostname: String? = nil) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.expectedHostname = expectedHostname
        }
    }

    /// Reconnection with exponential backoff and jitter, so that replicas do not reconnect in step
    /// after a server restart.
    public struct Reconnect: Sendable {
        /// -1 retries forever.
        public var maxAttempts: Int
        public var initialDelay: Duration
        public var maxDelay: Duration

        public init(maxAttempts: Int = -1, initialDelay: Duration = .milliseconds(100), maxDelay: Duration = .seconds(5)) {
            self.maxAttempts = maxAttempts
            self.initialDelay = initialDelay
            self.maxDelay = maxDelay
        }

        /// Delay before attempt `attempt` (1-based): initial × 2^(attempt-1), capped, plus up to
        /// 20 % random jitter.
        public func delay(beforeAttempt attempt: Int) -> Duration {
            let exponent = min(max(attempt - 1, 0), 30)
            let base = min(initialDelay * (1 << exponent), maxDelay)
            let jitterMilliseconds = base.milliseconds / 5
            let jitter = jitterMilliseconds > 0 ? Int64.random(in: 0...jitterMilliseconds) : 0
            return base + .milliseconds(jitter)
        }
    }

    public var servers: [String]
    /// Connection name shown by the server's monitoring (the service name).
    public var name: String?
    public var user: String?
    public var password: String?
    /// A `.creds` file (JWT + NKey seed), the production alternative to user/password.
    public var credentialsFile: String?
    public var tls: TLS?
    public var connectTimeout: Duration
    public var reconnect: Reconnect
    /// Keep retrying the first connection in the background instead of failing, so that a
    /// service may start before NATS is up (it reports not-ready meanwhile).
    public var retryOnFailedConnect: Bool
    /// Write each publish to the socket at once instead of buffering it for nats.c's flusher
    /// thread. Rampart's traffic is request/reply, where buffering adds about a millisecond to
    /// every hop; turn it off only for a connection that streams many one-way messages.
    public var sendAsap: Bool
    /// JetStream replicas of the streams and key-value buckets created or updated through this
    /// connection whose configuration names none: 1 on a single server, 3 in a production cluster.
    public var jetStreamReplicas: Int

    public init(
        servers: [String] = ["nats://127.0.0.1:4222"],
        name: String? = nil,
        user: String? = nil,
        password: String? = nil,
        credentialsFile: String? = nil,
        tls: TLS? = nil,
        connectTimeout: Duration = .seconds(5),
        reconnect: Reconnect = Reconnect(),
        retryOnFailedConnect: Bool = false,
        sendAsap: Bool = true,
        jetStreamReplicas: Int = 1
    ) {
        self.servers = servers
        self.name = name
        self.user = user
        self.password = password
        self.credentialsFile = credentialsFile
        self.tls = tls
        self.connectTimeout = connectTimeout
        self.reconnect = reconnect
        self.retryOnFailedConnect = retryOnFailedConnect
        self.sendAsap = sendAsap
        self.jetStreamReplicas = jetStreamReplicas
    }

    public var description: String {
        var parts = ["servers: \(servers.joined(separator: ","))"]
        if let name { parts.append("name: \(name)") }
        if let user { parts.append("user: \(user)") }
        if password != nil { parts.append("password: <redacted>") }
        if let credentialsFile { parts.append("credentials: \(credentialsFile)") }
        if tls != nil { parts.append("tls: on") }
        return "NATSConfiguration(" + parts.joined(separator: ", ") + ")"
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
