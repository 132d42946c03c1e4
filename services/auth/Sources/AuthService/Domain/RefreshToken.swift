import ServiceKit
import SodiumKit

/// AUTH-6's refresh token: the tenant's schema holds its session.
typealias RefreshToken = TenantToken

extension TenantToken {
    static let successorPurpose = "rampart refresh successor"

    /// The refresh token that replaces this one: a keyed hash of it, so a retry within the
    /// reuse interval gets the very token the lost answer carried without any token being stored.
    func successor(keyRing: KeyRing) throws -> TenantToken {
        TenantToken(tenant: tenant, secret: try keyRing.keyedHash(secret, purpose: Self.successorPurpose))
    }
}
