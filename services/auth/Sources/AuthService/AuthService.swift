import RampartModels
import ServiceKit

/// Registration, login, tokens, sessions, MFA, SSO and API keys (SPEC sections 1-4).
///
/// Foundation only so far: the service starts, migrates its database, answers
/// `rampart.v1.auth.health` over NATS and serves its ops endpoints. Its operations arrive with
/// the issues that build them.
public enum AuthService {
    public static func descriptor() -> ServiceDescriptor {
        ServiceDescriptor(name: .auth)
    }
}
