public import RampartModels
import SodiumKit

/// A bearer token that names the tenant whose schema holds it: `<tenant ID>.<32 random bytes,
/// base64url>`. auth's refresh tokens (AUTH-6) and tenants' invitations (TEN-10) have this
/// form; only the SHA-256 of the random part is stored, so a copy of the table holds no token.
public struct TenantToken: Sendable, Equatable {
    public let tenant: TenantID
    public let secret: [UInt8]

    public static func new(in tenant: TenantID) -> TenantToken {
        TenantToken(tenant: tenant, secret: randomBytes(32))
    }

    public init(tenant: TenantID, secret: [UInt8]) {
        self.tenant = tenant
        self.secret = secret
    }

    /// A well-formed token; nil for anything else (a tenant ID not in its canonical form too).
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard text.utf8.count <= 128, parts.count == 2, let tenant = TenantID(parts[0]), tenant.hex == parts[0],
            let secret = Base64.decode(String(parts[1]), variant: Base64.urlSafeNoPadding), secret.count == 32
        else { return nil }
        self.init(tenant: tenant, secret: secret)
    }

    public var text: String { "\(tenant.hex).\(Base64.encode(secret, variant: Base64.urlSafeNoPadding))" }

    /// What the table stores and looks the token up by.
    public var hash: [UInt8] { sha256(secret) }
}
