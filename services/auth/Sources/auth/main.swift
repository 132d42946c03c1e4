import AuthService
import ServiceKit

await ServiceRuntime.main(.auth) { reader in
    AuthService.descriptor(settings: AuthSettings(reader: &reader))
}
