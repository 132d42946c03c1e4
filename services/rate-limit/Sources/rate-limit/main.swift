import RateLimitService
import ServiceKit

await ServiceRuntime.main(.rateLimit) { reader in
    RateLimitService.descriptor(settings: RateLimitSettings(reader: &reader))
}
