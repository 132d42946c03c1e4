import RampartModels
import ServiceKit

/// Signed, SSRF-safe outbound webhooks (SPEC section 9).
///
/// Foundation only so far: the service starts, migrates its database, answers
/// `rampart.v1.webhooks.health` over NATS and serves its ops endpoints. Its operations arrive with
/// the issues that build them.
public enum WebhooksService {
    public static func descriptor() -> ServiceDescriptor {
        ServiceDescriptor(name: .webhooks)
    }
}
