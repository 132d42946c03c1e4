public import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What an access token says (AUTH-3). Short-lived (15 minutes by default): the gateway
/// accepts it without asking auth, so it must not outlive a revocation by much; sessions revoked
/// earlier are refused through the gateway's revocation set.
public struct AccessToken: Codable, Sendable, Equatable {
    /// Issuer, e.g. "rampart".
    public var iss: String
    /// The user's ID.
    public var sub: String
    /// The tenant the session is in (32 hex digits).
    public var tenant: String
    /// The session's ID: what revocation names.
    public var sid: String
    /// The user's tenant role (owner, admin, member).
    public var roles: [String]
    /// How the user authenticated (RFC 8176: pwd, otp, mfa).
    public var amr: [String]
    /// When the person last proved every factor their account has, Unix seconds (OpenID
    /// Connect's name): at sign-in, or later by a step-up. The actions that need a recent proof
    /// compare it with now. Absent on tokens from before it existed: never recent.
    public var auth_time: Int64?
    /// Issued at and expiry, Unix seconds.
    public var iat: Int64
    public var exp: Int64
    /// Unique per token.
    public var jti: String
    /// A platform super-admin (PERM-3): a flag auth holds per user, never a tenant role. Absent
    /// for everyone else.
    public var sa: Bool?
    /// The user's address is verified (AUTH-11: what needs proof of the mailbox checks it; OpenID
    /// Connect's name). Absent until it is, so a token from before the proof says no.
    public var email_verified: Bool?

    public init(
        iss: String,
        sub: String,
        tenant: String,
        sid: String,
        roles: [String],
        amr: [String],
        authTime: Int64? = nil,
        iat: Int64,
        exp: Int64,
        jti: String,
        superAdmin: Bool = false,
        emailVerified: Bool = false
    ) {
        self.iss = iss
        self.sub = sub
        self.tenant = tenant
        self.sid = sid
        self.roles = roles
        self.amr = amr
        auth_time = authTime
        self.iat = iat
        self.exp = exp
        self.jti = jti
        sa = superAdmin ? true : nil
        email_verified = emailVerified ? true : nil
    }

    public var isSuperAdmin: Bool { sa == true }
    public var isEmailVerified: Bool { email_verified == true }
}

public enum TokenError: Error, Sendable, Equatable, CustomStringConvertible {
    case malformed
    case unsupportedAlgorithm
    case unknownKey
    case badSignature
    case expired
    case notYetValid
    case wrongIssuer

    public var description: String {
        switch self {
        case .malformed: "the token is not a well-formed JWT"
        case .unsupportedAlgorithm: "the token's algorithm is not EdDSA"
        case .unknownKey: "the token's signing key is unknown"
        case .badSignature: "the token's signature does not verify"
        case .expired: "the token has expired"
        case .notYetValid: "the token is not valid yet"
        case .wrongIssuer: "the token was not issued here"
        }
    }
}

/// The JOSE header this package writes, and the only one it accepts.
struct Header: Codable, Equatable {
    var alg: String
    var typ: String?
    var kid: String
}

/// Signs access tokens with one Ed25519 key, named by `kid` in the header.
public struct AccessTokenSigner: Sendable {
    public let keyID: String
    let key: SigningKey

    public init(keyID: String, key: SigningKey) {
        self.keyID = keyID
        self.key = key
    }

    public func sign(_ token: AccessToken) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let header = base64URL(Array(try encoder.encode(Header(alg: "EdDSA", typ: "JWT", kid: keyID))))
        let payload = base64URL(Array(try encoder.encode(token)))
        let signingInput = header + "." + payload
        return signingInput + "." + base64URL(key.sign(Array(signingInput.utf8)))
    }
}

/// Verifies access tokens against known public keys. Strict by construction: the algorithm
/// must be EdDSA (no `none`, no HMAC with a public key as secret), the key must be one of ours
/// by `kid`, the issuer ours, and the time inside [iat - leeway, exp + leeway].
public struct AccessTokenVerifier: Sendable {
    public static let maximumTokenBytes = 4096
    /// The most clock leeway a verifier may be given: auth keeps each revocation this long past
    /// the last token it concerns could expire, so no verifier accepts a revoked token longer.
    public static let maximumLeewaySeconds = 300

    public let issuer: String
    public let publicKeys: [String: [UInt8]]
    public let leewaySeconds: Int64

    public init(issuer: String, publicKeys: [String: [UInt8]], leewaySeconds: Int64 = 30) {
        self.issuer = issuer
        self.publicKeys = publicKeys
        self.leewaySeconds = leewaySeconds
    }

    public func verify(_ token: String, now: Int64) throws(TokenError) -> AccessToken {
        guard token.utf8.count <= Self.maximumTokenBytes else { throw .malformed }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = bytes(base64URL: parts[0]),
            let header = try? JSONDecoder().decode(Header.self, from: Data(headerBytes))
        else { throw .malformed }
        guard header.alg == "EdDSA" else { throw .unsupportedAlgorithm }
        guard let key = publicKeys[header.kid] else { throw .unknownKey }
        guard let payloadBytes = bytes(base64URL: parts[1]), let signature = bytes(base64URL: parts[2]) else { throw .malformed }
        let signingInput = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        guard SigningKey.verify(signature, of: signingInput, publicKey: key) else { throw .badSignature }
        guard let claims = try? JSONDecoder().decode(AccessToken.self, from: Data(payloadBytes)) else { throw .malformed }
        guard claims.iss == issuer else { throw .wrongIssuer }
        guard now <= claims.exp + leewaySeconds else { throw .expired }
        guard claims.iat <= now + leewaySeconds else { throw .notYetValid }
        return claims
    }
}

/// A JSON Web Key Set of Ed25519 public keys (RFC 8037), as `/.well-known/jwks.json` serves it.
public enum JWKS {
    struct Key: Codable {
        var kty: String
        var crv: String?
        var alg: String?
        var use: String?
        var kid: String
        var x: String?
    }

    struct Set: Codable {
        var keys: [Key]
    }

    public static func render(_ publicKeys: [String: [UInt8]]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let keys = publicKeys.keys.sorted().map { Key(kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig", kid: $0, x: base64URL(publicKeys[$0]!)) }
        return String(decoding: try encoder.encode(Set(keys: keys)), as: UTF8.self)
    }

    /// The Ed25519 keys of a set, by `kid`; anything else in it is ignored.
    public static func parse(_ json: String) throws -> [String: [UInt8]] {
        let set = try JSONDecoder().decode(Set.self, from: Data(json.utf8))
        var keys: [String: [UInt8]] = [:]
        for key in set.keys where key.kty == "OKP" && key.crv == "Ed25519" {
            if let x = key.x.flatMap({ bytes(base64URL: Substring($0)) }), x.count == SigningKey.publicKeyByteCount { keys[key.kid] = x }
        }
        return keys
    }
}

func base64URL(_ bytes: [UInt8]) -> String {
    Base64.encode(bytes, variant: Base64.urlSafeNoPadding)
}

func bytes(base64URL text: Substring) -> [UInt8]? {
    guard !text.isEmpty, !text.utf8.contains(UInt8(ascii: "=")) else { return nil }
    return Base64.decode(String(text), variant: Base64.urlSafeNoPadding)
}
