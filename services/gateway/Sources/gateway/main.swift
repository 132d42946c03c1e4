import GatewayService
import ServiceKit

await ServiceRuntime.main(.gateway) { reader in
    GatewayService.descriptor(settings: GatewaySettings(reader: &reader))
}
