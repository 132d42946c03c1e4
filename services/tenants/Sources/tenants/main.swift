import ServiceKit
import TenantsService

await ServiceRuntime.main(TenantsService.descriptor())
