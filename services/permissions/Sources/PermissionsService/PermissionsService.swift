import RampartModels
import ServiceKit

/// Roles, bindings and the permission check (SPEC section 6).
///
/// Foundation only so far: the service starts, migrates its database, answers
/// `rampart.v1.permissions.health` over NATS and serves its ops endpoints. Its operations arrive with
/// the issues that build them.
public enum PermissionsService {
    public static func descriptor() -> ServiceDescriptor {
        ServiceDescriptor(name: .permissions)
    }
}
