import RampartModels
import ServiceKit
import SodiumKit

/// AUTH-6's refresh token: `<tenant ID>.<32 random bytes, base64url>`. The tenant part says
/// which schema holds the session; only the SHA-256 of the random part is stored.
struct RefreshToken: Sendable, Equatable {
    let tenant: TenantID
    let secret: [UInt8]

    static let successorPurpose = "rampart refresh successor"

    static func new(in tenant: TenantID) -> RefreshToken {
        RefreshToken(tenant: tenant, secret: randomBytes(32))
    }

    init(tenant: TenantID, secret: [UInt8]) {
        self.tenant = tenant
        self.secret = secret
    }

    /// A well-formed token; nil for anything else (a tenant ID not in its canonical form too).
    init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard text.utf8.count <= 128, parts.count == 2, let tenant = TenantID(parts[0]), tenant.hex == parts[0],
            let secret = Base64.decode(String(parts[1]), variant: Base64.urlSafeNoPadding), secret.count == 32
        else { return nil }
        self.init(tenant: tenant, secret: secret)
    }

    var text: String { "\(tenant.hex).\(Base64.encode(secret, variant: Base64.urlSafeNoPadding))" }

    /// What the table stores and looks the token up by.
    var hash: [UInt8] { sha256(secret) }

    /// The token that replaces this one: a keyed hash of it, so a retry within the reuse
    /// interval gets the very token the lost answer carried without any token being stored.
    func successor(keyRing: KeyRing) throws -> RefreshToken {
        RefreshToken(tenant: tenant, secret: try keyRing.keyedHash(secret, purpose: Self.successorPurpose))
    }
}
