import RampartModels
public import ServiceKit
public import SodiumKit

/// webhooks' own configuration.
public struct WebhooksSettings: Sendable {
    /// Seals the endpoints' signing secrets.
    public var keyEncryption: KeyRing
    /// WH-3's escape hatch for tests and on-premises receivers: networks deliveries may reach
    /// although they are not public. Logged at start. Metadata addresses stay refused.
    public var allowedNetworks: [IPNetwork]
    /// One attempt's whole budget: connect, send, headers and the (capped) body.
    public var timeoutSeconds: Int
    /// How much of a response body is read (and kept in the log) before the connection is cut.
    public var responseBodyLimit: Int
    /// The wait before each retry (WH-2: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); after the last
    /// failed retry the delivery is dead. Each wait gets up to 10% of jitter.
    public var retrySchedule: [Int]
    /// An endpoint whose deliveries have all failed for this long is disabled.
    public var disableAfterSeconds: Int
    /// Deliveries in flight at once, per replica.
    public var concurrency: Int
    public var maximumEndpoints: Int
    /// WH-5: each inbound provider's signing secret, by the name in `/v1/inbound/{provider}`.
    public var inboundSecrets: [String: String]
    /// How far a provider's signature timestamp may be from now.
    public var inboundToleranceSeconds: Int

    public static let defaultRetrySchedule = [5, 300, 1800, 7200, 18000, 36000, 36000]

    public init(
        keyEncryption: KeyRing = try! KeyRing(currentKeyID: "webhooks-1", keys: ["webhooks-1": .generate()]),
        allowedNetworks: [IPNetwork] = [],
        timeoutSeconds: Int = 10,
        responseBodyLimit: Int = 65536,
        retrySchedule: [Int] = defaultRetrySchedule,
        disableAfterSeconds: Int = 5 * 86_400,
        concurrency: Int = 64,
        maximumEndpoints: Int = 20,
        inboundSecrets: [String: String] = [:],
        inboundToleranceSeconds: Int = 300
    ) {
        self.keyEncryption = keyEncryption
        self.allowedNetworks = allowedNetworks
        self.timeoutSeconds = timeoutSeconds
        self.responseBodyLimit = responseBodyLimit
        self.retrySchedule = retrySchedule
        self.disableAfterSeconds = disableAfterSeconds
        self.concurrency = concurrency
        self.maximumEndpoints = maximumEndpoints
        self.inboundSecrets = inboundSecrets
        self.inboundToleranceSeconds = inboundToleranceSeconds
    }

    /// `RAMPART_WEBHOOKS_KEY_ENCRYPTION_KEYS` (required), `RAMPART_WEBHOOKS_ALLOWED_NETWORKS`
    /// (CIDRs; none), `RAMPART_WEBHOOKS_TIMEOUT_SECONDS` (10), `RAMPART_WEBHOOKS_RESPONSE_BODY_LIMIT`
    /// (65536 bytes), `RAMPART_WEBHOOKS_RETRY_SCHEDULE` (seconds, comma-separated),
    /// `RAMPART_WEBHOOKS_DISABLE_AFTER_SECONDS` (5 days), `RAMPART_WEBHOOKS_CONCURRENCY` (64),
    /// `RAMPART_WEBHOOKS_MAXIMUM_ENDPOINTS` (20 per tenant), `RAMPART_WEBHOOKS_INBOUND_SECRETS`
    /// (`<provider>=<secret>,…`; none), `RAMPART_WEBHOOKS_INBOUND_TOLERANCE_SECONDS` (300).
    public init(reader: inout EnvironmentReader) {
        let keyRing = reader.keyRing("webhooks.key-encryption-keys")
        var schedule: [Int] = []
        for entry in reader.list("webhooks.retry-schedule", default: Self.defaultRetrySchedule.map(String.init)) {
            guard let seconds = Int(entry), (1...86_400).contains(seconds) else {
                reader.problem("RAMPART_WEBHOOKS_RETRY_SCHEDULE must list waits of 1 to 86400 seconds: \(entry.debugDescription) is not one")
                continue
            }
            schedule.append(seconds)
        }
        var inbound: [String: String] = [:]
        for entry in (reader.optionalString("webhooks.inbound-secrets", secret: true) ?? "").split(separator: ",") {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, Subjects.InboundEvents.isProviderName(parts[0]), !parts[1].isEmpty else {
                reader.problem("RAMPART_WEBHOOKS_INBOUND_SECRETS must be <provider>=<secret>,… with providers in lower case")
                continue
            }
            inbound[parts[0]] = parts[1]
        }
        self.init(
            keyEncryption: keyRing,
            allowedNetworks: reader.networks("webhooks.allowed-networks"),
            timeoutSeconds: reader.int("webhooks.timeout-seconds", default: 10, range: 1...60),
            responseBodyLimit: reader.int("webhooks.response-body-limit", default: 65536, range: 0...(1 << 20)),
            retrySchedule: schedule,
            disableAfterSeconds: reader.int("webhooks.disable-after-seconds", default: 5 * 86_400, range: 60...(90 * 86_400)),
            concurrency: reader.int("webhooks.concurrency", default: 64, range: 1...1024),
            maximumEndpoints: reader.int("webhooks.maximum-endpoints", default: 20, range: 1...1000),
            inboundSecrets: inbound,
            inboundToleranceSeconds: reader.int("webhooks.inbound-tolerance-seconds", default: 300, range: 1...3600)
        )
    }
}
