import RampartModels
import ServiceKit

/// Tenants, their members, plans and policies, and the provisioning saga (SPEC section 5).
///
/// Foundation only so far: the service starts, migrates its database, answers
/// `rampart.v1.tenants.health` over NATS and serves its ops endpoints. Its operations arrive with
/// the issues that build them.
public enum TenantsService {
    public static func descriptor() -> ServiceDescriptor {
        ServiceDescriptor(name: .tenants)
    }
}
