import RampartModels
import ServiceKit

/// The tamper-evident audit log (SPEC section 7).
///
/// Foundation only so far: the service starts, migrates its database, answers
/// `rampart.v1.audit.health` over NATS and serves its ops endpoints. Its operations arrive with
/// the issues that build them.
public enum AuditService {
    public static func descriptor() -> ServiceDescriptor {
        ServiceDescriptor(name: .audit)
    }
}
