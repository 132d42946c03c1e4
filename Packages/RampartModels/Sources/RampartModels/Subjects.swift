/// NATS subject names. `proto/SUBJECTS.md` lists every subject with its publisher, its
/// subscribers and its transport; keep the two in step.
public enum Subjects {
    /// Prefix of every request/reply subject: `rampart.v1.<service>.<operation>`.
    public static let requestPrefix = "rampart.v1"

    /// A request/reply operation of a service.
    public static func operation(_ operation: String, of service: ServiceName) -> String {
        "\(requestPrefix).\(service.subjectToken).\(operation)"
    }

    /// Health of one service (any replica answers): `rampart.v1.<service>.health`.
    public static func health(_ service: ServiceName) -> String {
        operation("health", of: service)
    }

    /// JetStream stream for domain events that must not be lost.
    public static let eventsStream = "RAMPART_EVENTS"
    public static let eventsPrefix = "rampart.events"

    /// JetStream stream for audit events.
    public static let auditStream = "RAMPART_AUDIT"
    public static let auditPrefix = "rampart.audit"
}
