/// Names of the NATS headers that carry the call context of a request (ARCHITECTURE
/// "Messaging"). Values are plain text; the RPC layer validates them before a handler runs.
public enum CallHeader {
    public static let requestID = "Rampart-Request-Id"
    public static let tenantID = "Rampart-Tenant-Id"
    /// `user:<id>`, `api_key:<id>` or `system:<service>`.
    public static let principal = "Rampart-Principal"
    public static let clientIP = "Rampart-Client-Ip"
    public static let userAgent = "Rampart-User-Agent"
    /// Absolute deadline, Unix epoch milliseconds.
    public static let deadline = "Rampart-Deadline"
    /// W3C trace context, so one request can be followed across services.
    public static let traceparent = "traceparent"
    /// Present on a reply whose body is a `Rampart_V1_Error`; its value is the code's name.
    public static let error = "Rampart-Error"
}
