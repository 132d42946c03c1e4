import Crypto
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What one ID token must be to sign a person in (SSO-1, OpenID Connect Core 3.1.3.7).
struct IDTokenExpectation: Sendable {
    /// The connection's issuer, compared as an exact string.
    let issuer: String
    let clientID: String
    /// The nonce this sign-in sent, kept with its state.
    let nonce: String
    /// The algorithms the connection accepts: its provider's declared ones, never `none`.
    let algorithms: Set<SigningAlgorithm>
    /// The key of HS256, when the connection names that algorithm.
    let clientSecret: [UInt8]?
    let now: Date
    /// Allowed clock difference with the provider, for `exp`, `iat` and `nbf`.
    var leewaySeconds: Double = 60
    /// How old an `iat` may be: a token minted long ago for this nonce is not this sign-in's.
    var maximumAgeSeconds: Double = 600
}

/// Why an ID token was refused; the raw value is the reason `sso.login_failed` records.
enum IDTokenRejection: String, Error, Sendable {
    case malformed = "id_token_malformed"
    case algorithmNotAllowed = "id_token_algorithm_not_allowed"
    case unknownKey = "id_token_unknown_key"
    case badSignature = "id_token_signature_invalid"
    case wrongIssuer = "id_token_wrong_issuer"
    case wrongAudience = "id_token_wrong_audience"
    case wrongAuthorizedParty = "id_token_wrong_azp"
    case expired = "id_token_expired"
    case notYetValid = "id_token_not_yet_valid"
    case wrongNonce = "id_token_wrong_nonce"
    case missingSubject = "id_token_missing_sub"
}

/// One claim of an ID token, as far as Rampart reads claims.
enum ClaimValue: Decodable, Equatable, Sendable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case strings([String])
    case other

    init(from decoder: any Decoder) throws {
        let value = try decoder.singleValueContainer()
        if let string = try? value.decode(String.self) {
            self = .string(string)
        } else if let bool = try? value.decode(Bool.self) {
            self = .bool(bool)
        } else if let number = try? value.decode(Double.self) {
            self = .number(number)
        } else if let strings = try? value.decode([String].self) {
            self = .strings(strings)
        } else {
            self = .other
        }
    }

    var string: String? { if case .string(let value) = self { value } else { nil } }
    var number: Double? { if case .number(let value) = self { value } else { nil } }
    /// A string or an array of strings, as `aud` and `amr` may be.
    var strings: [String]? {
        switch self {
        case .string(let value): [value]
        case .strings(let values): values
        default: nil
        }
    }
}

/// A verified ID token: its signature checked against the provider's key and its claims
/// against the expectation. Nothing in it is read before both pass.
struct IDToken: Sendable {
    static let maximumLength = 16 * 1024

    let claims: [String: ClaimValue]

    var subject: String { claims["sub"]?.string ?? "" }
    var email: String? { claims["email"]?.string }
    /// Only a JSON `true`: a provider that sends the string "true" is not taken at its word.
    var emailVerified: Bool { claims["email_verified"] == .bool(true) }
    /// RFC 8176 authentication methods the provider says it used.
    var methods: [String] { claims["amr"]?.strings ?? [] }

    /// The token's protected header, read before its signature to pick the key.
    struct Header: Sendable {
        let algorithm: SigningAlgorithm
        let kid: String?
    }

    static func verify(
        _ token: String,
        keys: ProviderKeySet,
        expecting expectation: IDTokenExpectation
    ) throws(IDTokenRejection) -> IDToken {
        let (header, signingInput, payload, signature) = try parts(of: token)
        guard expectation.algorithms.contains(header.algorithm) else { throw .algorithmNotAllowed }
        if header.algorithm == .hs256 {
            guard let secret = expectation.clientSecret, !secret.isEmpty else { throw .algorithmNotAllowed }
            let mac = HMAC<SHA256>.authenticationCode(for: signingInput, using: SymmetricKey(data: secret))
            guard constantTimeEquals(Array(mac), signature) else { throw .badSignature }
        } else {
            guard let key = keys.key(kid: header.kid, algorithm: header.algorithm) else { throw .unknownKey }
            guard key.isValidSignature(signature, for: signingInput, algorithm: header.algorithm) else { throw .badSignature }
        }
        guard let claims = try? JSONDecoder().decode([String: ClaimValue].self, from: Data(payload)) else { throw .malformed }
        let token = IDToken(claims: claims)
        try token.check(expectation)
        return token
    }

    /// The header alone, unverified: which key the token names.
    static func header(of token: String) throws(IDTokenRejection) -> Header {
        try parts(of: token).header
    }

    private func check(_ expectation: IDTokenExpectation) throws(IDTokenRejection) {
        guard claims["iss"]?.string == expectation.issuer else { throw .wrongIssuer }
        guard let audiences = claims["aud"]?.strings, audiences.contains(expectation.clientID) else { throw .wrongAudience }
        // Core 3.1.3.7 (3-5): a token for several audiences names its authorized party, which must
        // be this client; one for this client alone may name it too, and must name it rightly.
        if let party = claims["azp"] {
            guard party.string == expectation.clientID else { throw .wrongAuthorizedParty }
        } else if audiences.count > 1 {
            throw .wrongAuthorizedParty
        }
        let now = expectation.now.timeIntervalSince1970
        guard let expiry = claims["exp"]?.number, now < expiry + expectation.leewaySeconds else { throw .expired }
        guard let issued = claims["iat"]?.number, issued <= now + expectation.leewaySeconds else { throw .notYetValid }
        guard issued >= now - expectation.maximumAgeSeconds - expectation.leewaySeconds else { throw .expired }
        if let notBefore = claims["nbf"] {
            guard let notBefore = notBefore.number, notBefore <= now + expectation.leewaySeconds else { throw .notYetValid }
        }
        guard let nonce = claims["nonce"]?.string, constantTimeEquals(Array(nonce.utf8), Array(expectation.nonce.utf8)) else {
            throw .wrongNonce
        }
        guard let subject = claims["sub"]?.string, !subject.isEmpty, subject.utf8.count <= 255 else { throw .missingSubject }
    }

    private static func parts(
        of token: String
    ) throws(IDTokenRejection) -> (header: Header, signingInput: [UInt8], payload: [UInt8], signature: [UInt8]) {
        guard token.utf8.count <= maximumLength else { throw .malformed }
        let sections = token.split(separator: ".", omittingEmptySubsequences: false)
        // Five sections would be an encrypted token (JWE), which no connection asks for.
        guard sections.count == 3,
            let headerBytes = Base64.decode(String(sections[0]), variant: Base64.urlSafeNoPadding),
            let payload = Base64.decode(String(sections[1]), variant: Base64.urlSafeNoPadding),
            let signature = Base64.decode(String(sections[2]), variant: Base64.urlSafeNoPadding),
            let fields = try? JSONDecoder().decode([String: ClaimValue].self, from: Data(headerBytes))
        else { throw .malformed }
        guard let name = fields["alg"]?.string, let algorithm = SigningAlgorithm(rawValue: name) else {
            throw .algorithmNotAllowed
        }
        // RFC 7515 4.1.11: a critical extension Rampart does not understand makes the token invalid.
        guard fields["crit"] == nil else { throw .malformed }
        let kid: String?
        switch fields["kid"] {
        case nil: kid = nil
        case .string(let value)?: kid = value
        default: throw .malformed
        }
        let signingInput = Array(token.utf8.prefix(sections[0].utf8.count + 1 + sections[1].utf8.count))
        return (Header(algorithm: algorithm, kid: kid), signingInput, payload, signature)
    }
}
