import AuditService
import ServiceKit

await ServiceRuntime.main(.audit) { reader in
    AuditService.descriptor(settings: AuditSettings(reader: &reader))
}
