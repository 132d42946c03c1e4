import PermissionsService
import ServiceKit

await ServiceRuntime.main(PermissionsService.descriptor())
