import GatewayService
import ServiceKit

await ServiceRuntime.main(GatewayService.descriptor())
