/// The eight Rampart services. One name per service, used for the executable, the NATS subject
/// token, the queue group, the database and the NATS user.
public enum ServiceName: String, CaseIterable, Sendable, Codable {
    case auth
    case tenants
    case permissions
    case audit
    case rateLimit = "rate-limit"
    case webhooks
    case gateway
    /// The sender of outbound mail (AUTH-10).
    case mail

    /// The executable's and the deployment's name (`rate-limit`).
    public var executableName: String { rawValue }

    /// The token used in NATS subjects and queue groups (`ratelimit`): subject tokens avoid `-`
    /// so that every subject reads the same way.
    public var subjectToken: String { rawValue.filter { $0 != "-" } }

    /// Database and database-role name (`rampart_rate_limit`).
    public var databaseName: String { "rampart_" + String(rawValue.map { $0 == "-" ? "_" : $0 }) }
}
