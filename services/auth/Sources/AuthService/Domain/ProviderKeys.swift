import Crypto
import CryptoExtras
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The JWS algorithms an ID token may be signed with (SSO-1). `none` is not among them, and
/// HS256 is accepted only from a connection that names it, with its client secret as the key
/// (OpenID Connect Core 10.1): a provider's public key is never used as an HMAC secret.
enum SigningAlgorithm: String, CaseIterable, Sendable {
    case rs256 = "RS256"
    case rs384 = "RS384"
    case rs512 = "RS512"
    case ps256 = "PS256"
    case ps384 = "PS384"
    case ps512 = "PS512"
    case es256 = "ES256"
    case es384 = "ES384"
    case es512 = "ES512"
    case edDSA = "EdDSA"
    case hs256 = "HS256"

    /// What a connection accepts when its provider's discovery names nothing: Connect's default.
    static let asymmetric: Set<SigningAlgorithm> = Set(allCases).subtracting([.hs256])
}

/// One verification key of a provider's JWK Set (RFC 7517), of a type Rampart can use.
struct ProviderKey: Sendable {
    enum Material: Sendable {
        case rsa(_RSA.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
        case p521(P521.Signing.PublicKey)
        case ed25519(Curve25519.Signing.PublicKey)
    }

    let kid: String?
    /// The key's own `alg`, when the set names one: the key is then used with no other.
    let algorithm: String?
    let material: Material

    /// Whether this key may check a signature made with `algorithm`: the key's type must be the
    /// algorithm's, so that an RSA key never checks an ECDSA signature or the other way round.
    func accepts(_ algorithm: SigningAlgorithm) -> Bool {
        if let own = self.algorithm, own != algorithm.rawValue { return false }
        switch (material, algorithm) {
        case (.rsa, .rs256), (.rsa, .rs384), (.rsa, .rs512), (.rsa, .ps256), (.rsa, .ps384), (.rsa, .ps512): return true
        case (.p256, .es256), (.p384, .es384), (.p521, .es512), (.ed25519, .edDSA): return true
        default: return false
        }
    }

    func isValidSignature(_ signature: [UInt8], for input: [UInt8], algorithm: SigningAlgorithm) -> Bool {
        guard accepts(algorithm) else { return false }
        switch (material, algorithm) {
        case (.rsa(let key), _):
            let signature = _RSA.Signing.RSASignature(rawRepresentation: signature)
            switch algorithm {
            case .rs256: return key.isValidSignature(signature, for: SHA256.hash(data: input), padding: .insecurePKCS1v1_5)
            case .rs384: return key.isValidSignature(signature, for: SHA384.hash(data: input), padding: .insecurePKCS1v1_5)
            case .rs512: return key.isValidSignature(signature, for: SHA512.hash(data: input), padding: .insecurePKCS1v1_5)
            case .ps256: return key.isValidSignature(signature, for: SHA256.hash(data: input), padding: .PSS)
            case .ps384: return key.isValidSignature(signature, for: SHA384.hash(data: input), padding: .PSS)
            case .ps512: return key.isValidSignature(signature, for: SHA512.hash(data: input), padding: .PSS)
            default: return false
            }
        case (.p256(let key), _):
            guard let signature = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(signature, for: SHA256.hash(data: input))
        case (.p384(let key), _):
            guard let signature = try? P384.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(signature, for: SHA384.hash(data: input))
        case (.p521(let key), _):
            guard let signature = try? P521.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(signature, for: SHA512.hash(data: input))
        case (.ed25519(let key), _):
            return key.isValidSignature(signature, for: input)
        }
    }
}

/// A provider's JWK Set, reduced to the signing keys Rampart can use. Keys of other types or
/// uses (encryption keys, symmetric keys, curves not listed) are left out rather than refused, as
/// a provider may publish them beside its signing keys; a set with none left is an error.
struct ProviderKeySet: Sendable {
    let keys: [ProviderKey]

    enum Failure: Error, Equatable {
        case notAKeySet
        case noUsableKey
    }

    init(keys: [ProviderKey]) {
        self.keys = keys
    }

    init(json: [UInt8]) throws(Failure) {
        guard let set = try? JSONDecoder().decode(JWKSet.self, from: Data(json)) else { throw .notAKeySet }
        let keys = set.keys.compactMap { $0.providerKey() }
        guard !keys.isEmpty else { throw .noUsableKey }
        self.keys = keys
    }

    /// The key that checks a token with this header; nil when the set has none, which may mean the
    /// provider rotated its keys (the caller fetches the set again once). A token without a `kid`
    /// is checked only when exactly one key fits its algorithm, as OpenID Connect Core 10.1 asks.
    func key(kid: String?, algorithm: SigningAlgorithm) -> ProviderKey? {
        let fitting = keys.filter { $0.accepts(algorithm) }
        guard let kid else { return fitting.count == 1 ? fitting[0] : nil }
        return fitting.first { $0.kid == kid }
    }
}

/// RFC 7517/7518's JSON shape, decoded leniently: one malformed key does not spoil the set.
private struct JWKSet: Decodable {
    let keys: [JWK]

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        var array = try container.nestedUnkeyedContainer(forKey: .keys)
        var keys: [JWK] = []
        while !array.isAtEnd {
            if let key = try? array.decode(JWK.self) { keys.append(key) } else { _ = try? array.decode(Skipped.self) }
        }
        self.keys = keys
    }

    private enum CodingKeys: String, CodingKey { case keys }
    private struct Skipped: Decodable {}
}

private struct JWK: Decodable {
    let kty: String
    let kid: String?
    let use: String?
    let alg: String?
    let crv: String?
    let n: String?
    let e: String?
    let x: String?
    let y: String?

    func providerKey() -> ProviderKey? {
        if let use, use != "sig" { return nil }
        guard let material = material() else { return nil }
        return ProviderKey(kid: kid, algorithm: alg, material: material)
    }

    private func material() -> ProviderKey.Material? {
        switch (kty, crv) {
        case ("RSA", _):
            // swift-crypto refuses moduli under 2048 bits, as RFC 7518 3.3 requires.
            guard let n = decode(n), let e = decode(e), let key = try? _RSA.Signing.PublicKey(n: n, e: e) else { return nil }
            return .rsa(key)
        case ("EC", "P-256"):
            guard let point = point(32), let key = try? P256.Signing.PublicKey(rawRepresentation: point) else { return nil }
            return .p256(key)
        case ("EC", "P-384"):
            guard let point = point(48), let key = try? P384.Signing.PublicKey(rawRepresentation: point) else { return nil }
            return .p384(key)
        case ("EC", "P-521"):
            guard let point = point(66), let key = try? P521.Signing.PublicKey(rawRepresentation: point) else { return nil }
            return .p521(key)
        case ("OKP", "Ed25519"):
            guard let x = decode(x), x.count == 32, let key = try? Curve25519.Signing.PublicKey(rawRepresentation: x) else {
                return nil
            }
            return .ed25519(key)
        default:
            return nil
        }
    }

    /// The uncompressed point's coordinates, each of the curve's full length (RFC 7518 6.2.1.2).
    private func point(_ length: Int) -> [UInt8]? {
        guard let x = decode(x), let y = decode(y), x.count == length, y.count == length else { return nil }
        return x + y
    }

    private func decode(_ text: String?) -> [UInt8]? {
        guard let text, text.utf8.count <= 2048 else { return nil }
        return Base64.decode(text, variant: Base64.urlSafeNoPadding)
    }
}
