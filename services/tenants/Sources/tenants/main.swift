import TenantsService
import ServiceKit

await ServiceRuntime.main(TenantsService.descriptor())
