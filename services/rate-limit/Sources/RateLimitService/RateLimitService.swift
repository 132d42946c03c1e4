import RampartModels
import ServiceKit

/// Global rate limits and bans on NATS key-value (SPEC section 8).
///
/// Foundation only so far: the service starts (its state will live in NATS key-value buckets), answers
/// `rampart.v1.ratelimit.health` over NATS and serves its ops endpoints. Its operations arrive with
/// the issues that build them.
public enum RateLimitService {
    public static func descriptor() -> ServiceDescriptor {
        ServiceDescriptor(name: .rateLimit)
    }
}
