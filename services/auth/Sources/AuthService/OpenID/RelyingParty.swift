import GuardedHTTP
import Logging
import NIOHTTP1
import RampartModels
import ServiceKit
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Rampart as an OpenID Connect relying party, for a tenant's connection (SSO-3) and for the
/// platform's Google client (SSO-4) alike: the authorization code flow with PKCE S256, a
/// single-use state bound to the browser, a nonce and RFC 9207's `iss`; the code exchanged with
/// the client's secret through the SSRF guard, and the ID token verified (`IDToken`).
struct RelyingParty: Sendable {
    let providers: ProviderDirectory
    let signIns: SSOSignInStore
    /// The one callback every provider sends people back to.
    let redirectURI: String
    let logger: Logger

    /// A client registered at a provider.
    struct Client: Sendable {
        var issuer: String
        var clientID: String
        var clientSecret: String
        /// Algorithms accepted beyond those the provider declares (HS256 only when named here).
        var extraAlgorithms: [String] = []
    }

    // MARK: The start

    /// Where to send the browser: the provider's authorization endpoint with a new state, nonce
    /// and PKCE challenge, the sign-in pending for `purpose`; and the browser's binding.
    func begin(
        _ purpose: SSOSignInStore.Pending.Purpose,
        client: Client,
        emailHint: String? = nil,
        returnTo: String,
        extra: [(String, String)] = []
    ) async throws -> Rampart_V1_SsoStartReply {
        let metadata: ProviderMetadata
        do {
            metadata = try await providers.metadata(issuer: client.issuer)
        } catch {
            throw RampartError(.unavailable, "the identity provider could not be reached: \(error)")
        }
        let state = Self.randomToken()
        let nonce = Self.randomToken()
        let verifier = Self.randomToken()
        let binding = Self.randomToken()
        try await signIns.begin(
            SSOSignInStore.Pending(purpose: purpose, nonce: nonce, codeVerifier: verifier, emailHint: emailHint, returnTo: returnTo),
            stateHash: sha256(Array(state.utf8)),
            browserHash: sha256(Array(binding.utf8))
        )
        var parameters: [(String, String)] = [
            ("response_type", "code"), ("client_id", client.clientID), ("redirect_uri", redirectURI),
            ("scope", "openid email profile"), ("state", state), ("nonce", nonce),
            ("code_challenge", Self.challenge(verifier)), ("code_challenge_method", "S256"),
        ]
        if let emailHint { parameters.append(("login_hint", emailHint)) }
        parameters += extra
        let separator = metadata.authorizationEndpoint.contains("?") ? "&" : "?"
        var reply = Rampart_V1_SsoStartReply()
        reply.authorizationURL = metadata.authorizationEndpoint + separator + PercentEncoding.query(parameters)
        reply.browserBinding = binding
        reply.expiresIn = Int32(SSOSignInStore.lifetimeSeconds)
        return reply
    }

    /// Only the console's own paths: anything else would make the callback an open redirect.
    static func checkedReturnTo(_ text: String) throws -> String {
        guard !text.isEmpty else { return "/console/" }
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/%?=&".utf8)
        guard text.utf8.count <= 512, text.hasPrefix("/console/") || text == "/console", text.utf8.allSatisfy(allowed.contains),
            !text.contains("//"), !text.contains("/../"), !text.hasSuffix("/..")
        else {
            throw RampartError.invalidArgument("return_to must be a path of the console, such as /console/settings", field: "return_to")
        }
        return text
    }

    static func randomToken() -> String { Base64.encode(randomBytes(32), variant: Base64.urlSafeNoPadding) }

    /// RFC 7636 4.2: BASE64URL(SHA256(ASCII(code_verifier))).
    static func challenge(_ verifier: String) -> String { Base64.encode(sha256(Array(verifier.utf8)), variant: Base64.urlSafeNoPadding) }

    // MARK: The answer

    /// The state of a callback spent, or why it was not (recorded by the caller).
    func spend(_ request: Rampart_V1_SsoCallbackRequest) async throws -> Result<SSOSignInStore.Pending, OpenIDRefusal> {
        guard (1...128).contains(request.state.utf8.count) else {
            throw RampartError.invalidArgument("state is missing: start the sign-in again", field: "state")
        }
        let stateHash = sha256(Array(request.state.utf8))
        switch try await signIns.spend(stateHash: stateHash, browserHash: sha256(Array(request.browserBinding.prefix(128).utf8))) {
        case .success(let pending):
            return .success(pending)
        case .failure(let refusal):
            let message =
                switch refusal {
                case .unknown: "this sign-in is unknown: start it again"
                case .replayed: "this sign-in was used already: start it again"
                case .expired: "this sign-in took longer than \(SSOSignInStore.lifetimeSeconds / 60) minutes: start it again"
                case .otherBrowser: "this sign-in was started in another browser: start it again here"
                }
            var failure = OpenIDRefusal(reason: refusal.rawValue, message: message)
            failure.tenant = try await signIns.tenant(stateHash: stateHash)
            return .failure(failure)
        }
    }

    /// The provider's answer to `pending`'s request, checked: no refusal, a code, the provider's
    /// own `iss` (RFC 9207), the code exchanged, the ID token verified.
    func idToken(
        _ request: Rampart_V1_SsoCallbackRequest,
        _ pending: SSOSignInStore.Pending,
        client: Client
    ) async throws -> IDToken {
        guard request.error.isEmpty else {
            let code = String(request.error.prefix(64).filter { $0.isASCII && ($0.isLetter || $0 == "_") })
            throw OpenIDRefusal(reason: "provider_error", message: "the identity provider refused the sign-in (\(code))")
        }
        guard (1...2048).contains(request.code.utf8.count) else {
            throw OpenIDRefusal(reason: "code_missing", message: "the identity provider's answer has no code", code: .invalidArgument)
        }
        let metadata: ProviderMetadata
        do {
            metadata = try await providers.metadata(issuer: client.issuer)
        } catch {
            throw OpenIDRefusal(reason: "provider_unreachable", message: "the identity provider could not be reached: \(error)", code: .unavailable)
        }
        // RFC 9207: an answer that names another issuer came from a mix-up; one that names none,
        // from a provider that says it always names itself, too.
        if !request.iss.isEmpty, request.iss != client.issuer {
            throw OpenIDRefusal(reason: "issuer_mismatch", message: "the answer names another identity provider")
        }
        if request.iss.isEmpty, metadata.sendsIssuerInAnswer {
            throw OpenIDRefusal(reason: "issuer_missing", message: "the answer does not name its identity provider, which it always does")
        }
        let idToken = try await exchange(request.code, verifier: pending.codeVerifier, client: client, metadata: metadata)
        var algorithms = metadata.signingAlgorithms
        for name in client.extraAlgorithms { if let algorithm = SigningAlgorithm(rawValue: name) { algorithms.insert(algorithm) } }
        let expectation = IDTokenExpectation(
            issuer: client.issuer,
            clientID: client.clientID,
            nonce: pending.nonce,
            algorithms: algorithms,
            clientSecret: client.extraAlgorithms.contains(SigningAlgorithm.hs256.rawValue) ? Array(client.clientSecret.utf8) : nil,
            now: Date()
        )
        return try await verify(idToken, metadata: metadata, expectation: expectation)
    }

    /// RFC 6749 4.1.3 with RFC 7636's verifier: the code for tokens, the client authenticated
    /// with its secret (HTTP Basic, 2.3.1). The ID token is all Rampart keeps of the answer.
    private func exchange(_ code: String, verifier: String, client: Client, metadata: ProviderMetadata) async throws -> String {
        let body = PercentEncoding.query([
            ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectURI), ("code_verifier", verifier),
        ])
        let credentials = PercentEncoding.encode(client.clientID) + ":" + PercentEncoding.encode(client.clientSecret)
        let answer: GuardedHTTPClient.Answer
        do {
            try await providers.requireSecure(metadata.tokenEndpoint)
            answer = try await providers.http.send(
                .POST,
                metadata.tokenEndpoint,
                headers: [
                    ("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json"),
                    ("Authorization", "Basic " + Base64.encode(Array(credentials.utf8), variant: Base64.standard)),
                ],
                body: Array(body.utf8),
                bodyLimit: ProviderDirectory.bodyLimit,
                logger: logger
            )
        } catch {
            throw OpenIDRefusal(reason: "token_request_failed", message: "the identity provider could not be reached: \(error)", code: .unavailable)
        }
        let fields = try? JSONDecoder().decode([String: ClaimValue].self, from: Data(answer.body))
        guard answer.status == 200, let idToken = fields?["id_token"]?.string else {
            let error = fields?["error"]?.string.map { String($0.prefix(64).filter { $0.isASCII && ($0.isLetter || $0 == "_") }) }
            throw OpenIDRefusal(
                reason: "token_request_refused",
                message: "the identity provider refused the code (\(error ?? "HTTP \(answer.status)"))"
            )
        }
        return idToken
    }

    /// The token against the provider's keys, fetched again once for a key the set lacks.
    private func verify(_ idToken: String, metadata: ProviderMetadata, expectation: IDTokenExpectation) async throws -> IDToken {
        for refresh in [false, true] {
            let keys: ProviderKeySet
            do {
                keys = try await providers.keys(metadata, refresh: refresh)
            } catch {
                throw OpenIDRefusal(
                    reason: "provider_unreachable",
                    message: "the identity provider's keys could not be read: \(error)",
                    code: .unavailable
                )
            }
            do {
                return try IDToken.verify(idToken, keys: keys, expecting: expectation)
            } catch .unknownKey where !refresh {
                continue
            } catch {
                throw OpenIDRefusal(reason: error.rawValue, message: "the identity provider's ID token is not valid (\(error.rawValue))")
            }
        }
        throw OpenIDRefusal(reason: IDTokenRejection.unknownKey.rawValue, message: "the ID token is signed with a key the provider does not publish")
    }
}

/// A refused answer from a provider: its reason, recorded as `sso.login_failed` and answered as
/// a problem whose `errors.reason` it is.
struct OpenIDRefusal: Error {
    var reason: String
    var message: String
    var code: RampartError.Code = .unauthenticated
    var email: String?
    /// The tenant the refused sign-in concerned, when known, for the audit.
    var tenant: TenantID?

    var problem: RampartError { RampartError(code, message, details: ["reason": reason]) }
}
