import GuardedHTTP
import Logging
import NIOHTTP1
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What a provider's discovery document (OpenID Connect Discovery 1.0) says that a sign-in uses.
struct ProviderMetadata: Sendable, Equatable {
    let issuer: String
    let authorizationEndpoint: String
    let tokenEndpoint: String
    let jwksURI: String
    /// `id_token_signing_alg_values_supported`, as far as Rampart signs with any of them.
    let signingAlgorithms: Set<SigningAlgorithm>
    /// RFC 9207: the provider sends `iss` with its answer, so the callback requires it.
    let sendsIssuerInAnswer: Bool
}

/// Why a provider could not be used; the text says what to fix at the provider or in the
/// connection, without echoing what the provider sent.
enum ProviderFailure: Error, Equatable, CustomStringConvertible {
    case unreachable(String)
    case badDocument(String)

    var description: String {
        switch self {
        case .unreachable(let why), .badDocument(let why): why
        }
    }
}

/// auth's outbound calls to SSO providers (SSO-1): discovery and JWK Sets, each through the
/// SSRF guard (WH-3) and cached; a JWK Set fetched again once when a token names a key it does
/// not have (key rotation), at most once every ten seconds per provider so that tokens with made-up
/// key IDs cannot make auth hammer a provider.
actor ProviderDirectory {
    let http: GuardedHTTPClient
    let logger: Logger
    private let now: @Sendable () -> ContinuousClock.Instant

    static let bodyLimit = 64 * 1024
    static let defaultCacheSeconds = 3600
    static let minimumCacheSeconds = 60
    static let maximumCacheSeconds = 86_400
    static let refetchIntervalSeconds = 10

    private var documents: [String: (metadata: ProviderMetadata, until: ContinuousClock.Instant)] = [:]
    private var keySets: [String: (keys: ProviderKeySet, until: ContinuousClock.Instant, fetched: ContinuousClock.Instant)] = [:]

    init(http: GuardedHTTPClient, logger: Logger, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.http = http
        self.logger = logger
        self.now = now
    }

    /// The issuer's discovery document, checked: it names the same issuer (Discovery 4.3, so
    /// one provider cannot pass itself off as another), supports the code flow with PKCE S256,
    /// and its endpoints are https (or in the networks the operator allowed).
    func metadata(issuer: String) async throws(ProviderFailure) -> ProviderMetadata {
        if let cached = documents[issuer], cached.until > now() { return cached.metadata }
        let url = (issuer.hasSuffix("/") ? String(issuer.dropLast()) : issuer) + "/.well-known/openid-configuration"
        let (body, seconds) = try await fetchJSON(url, what: "the discovery document")
        guard let document = try? JSONDecoder().decode(DiscoveryDocument.self, from: Data(body)) else {
            throw .badDocument("the discovery document at \(url) is not a provider configuration")
        }
        guard document.issuer == issuer else {
            throw .badDocument(
                "the discovery document names the issuer \(document.issuer.prefix(200).debugDescription), not \(issuer.debugDescription)"
            )
        }
        if let types = document.response_types_supported, !types.contains("code") {
            throw .badDocument("the provider does not offer the authorization code flow")
        }
        if let methods = document.code_challenge_methods_supported, !methods.contains("S256") {
            throw .badDocument("the provider does not offer PKCE with S256")
        }
        for endpoint in [document.authorization_endpoint, document.token_endpoint, document.jwks_uri] {
            try await requireSecure(endpoint)
        }
        let declared = Set((document.id_token_signing_alg_values_supported ?? ["RS256"]).compactMap(SigningAlgorithm.init(rawValue:)))
        let metadata = ProviderMetadata(
            issuer: document.issuer,
            authorizationEndpoint: document.authorization_endpoint,
            tokenEndpoint: document.token_endpoint,
            jwksURI: document.jwks_uri,
            signingAlgorithms: declared.subtracting([.hs256]),
            sendsIssuerInAnswer: document.authorization_response_iss_parameter_supported ?? false
        )
        documents[issuer] = (metadata, now() + .seconds(seconds))
        return metadata
    }

    /// The provider's signing keys; `refresh` fetches them again (a token named an unknown key)
    /// unless they were fetched within the last ten seconds.
    func keys(_ metadata: ProviderMetadata, refresh: Bool = false) async throws(ProviderFailure) -> ProviderKeySet {
        let instant = now()
        if let cached = keySets[metadata.jwksURI] {
            let fresh = cached.until > instant && !refresh
            let recent = instant < cached.fetched + .seconds(Self.refetchIntervalSeconds)
            if fresh || (refresh && recent) { return cached.keys }
        }
        let (body, seconds) = try await fetchJSON(metadata.jwksURI, what: "the JWK Set")
        let keys: ProviderKeySet
        do {
            keys = try ProviderKeySet(json: body)
        } catch {
            throw .badDocument(
                "the JWK Set at \(metadata.jwksURI) has no signing key Rampart can use (RSA of 2048 bits or more, P-256/384/521, Ed25519)"
            )
        }
        keySets[metadata.jwksURI] = (keys, instant + .seconds(seconds), instant)
        return keys
    }

    /// Forgets what is cached for an issuer: its connection changed.
    func forget(issuer: String) {
        if let metadata = documents.removeValue(forKey: issuer)?.metadata { keySets[metadata.jwksURI] = nil }
    }

    /// An https URL, or http to an address the operator allowed for development
    /// (`RAMPART_AUTH_SSO_ALLOWED_NETWORKS`, which `make run` sets to loopback).
    func requireSecure(_ url: String) async throws(ProviderFailure) {
        let destination: Destination
        let address: IPNetwork
        do {
            (destination, address) = try await http.destinations.check(url)
        } catch {
            throw .unreachable("\(url.prefix(200).debugDescription) is refused: \(error)")
        }
        if destination.scheme == .http, !http.destinations.policy.allowlist.contains(where: { $0.contains(address) }) {
            throw .badDocument("\(url.prefix(200).debugDescription) must be an https URL")
        }
    }

    /// A JSON document and how long it may be cached (its Cache-Control max-age, within bounds).
    private func fetchJSON(_ url: String, what: String) async throws(ProviderFailure) -> (body: [UInt8], cacheSeconds: Int) {
        try await requireSecure(url)
        let answer: GuardedHTTPClient.Answer
        do {
            answer = try await http.send(.GET, url, headers: [("Accept", "application/json")], bodyLimit: Self.bodyLimit, logger: logger)
        } catch {
            throw .unreachable("\(what) at \(url) could not be read: \(error)")
        }
        guard answer.status == 200 else {
            let why = (300..<400).contains(answer.status) ? "a redirect (not followed)" : "HTTP \(answer.status)"
            throw .unreachable("\(what) at \(url) answered \(why)")
        }
        return (answer.body, Self.cacheSeconds(answer.headers))
    }

    static func cacheSeconds(_ headers: HTTPHeaders) -> Int {
        let directives = headers[canonicalForm: "Cache-Control"].map { $0.lowercased() }
        if directives.contains("no-store") || directives.contains("no-cache") { return minimumCacheSeconds }
        for directive in directives where directive.hasPrefix("max-age=") {
            if let seconds = Int(directive.dropFirst("max-age=".count)) { return min(max(seconds, minimumCacheSeconds), maximumCacheSeconds) }
        }
        return defaultCacheSeconds
    }
}

/// The fields of a discovery document auth reads; names as the specification writes them.
private struct DiscoveryDocument: Decodable {
    let issuer: String
    let authorization_endpoint: String
    let token_endpoint: String
    let jwks_uri: String
    let response_types_supported: [String]?
    let code_challenge_methods_supported: [String]?
    let id_token_signing_alg_values_supported: [String]?
    let authorization_response_iss_parameter_supported: Bool?
}
