import ServiceKit
import TenantsService

await ServiceRuntime.main(.tenants) { reader in
    TenantsService.descriptor(settings: TenantsSettings(reader: &reader))
}
