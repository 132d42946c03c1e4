import AuthService
import ServiceKit

await ServiceRuntime.main(AuthService.descriptor())
