import RateLimitService
import ServiceKit

await ServiceRuntime.main(RateLimitService.descriptor())
