import AuditService
import ServiceKit

await ServiceRuntime.main(AuditService.descriptor())
