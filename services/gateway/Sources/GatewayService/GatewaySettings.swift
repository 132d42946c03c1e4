import Hummingbird
import RampartModels
import RateLimitKit
public import ServiceKit
import TokenKit

/// The gateway's own settings, read from `RAMPART_GATEWAY_*`: docs/configuration.md lists
/// each with its default (`ConfigurationDocsTests` keeps the two in step).
public struct GatewaySettings: Sendable {
    public var issuer: String
    /// Clock skew tolerated on an access token's `iat` and `exp`.
    public var clockLeewaySeconds: Int
    public var apiKeyCacheSeconds: Int
    public var trustedProxies: [IPNetwork]
    public var securityContact: String
    /// The gateway's address as clients see it (scheme, host, optional port; no path).
    public var publicURL: String
    /// How long a tenant's IP allowlist is used before it is fetched again; a change made
    /// through this replica applies at once.
    public var allowlistCacheSeconds: Int
    /// A connection silent this long is closed, and a request body must arrive within
    /// `bodySeconds` (slow clients hold connections and memory).
    public var idleTimeoutSeconds: Int
    public var bodySeconds: Int
    /// How long the owning service has to answer a request before the client gets 504.
    public var callTimeoutSeconds: Int
    /// nil: plain HTTP, for a gateway behind a TLS-terminating proxy or in tests.
    public var tls: GatewayTLS?
    /// Whether general API traffic goes ahead unlimited while the rate limiter cannot be asked
    /// (login and registration never do).
    public var apiLimitFailsOpen: Bool
    /// How recent a person's proof must be for the actions that ask for one (step-up: an
    /// admin's MFA reset, tenant deletion).
    public var stepUpSeconds: Int

    public init(
        issuer: String = "rampart",
        clockLeewaySeconds: Int = 30,
        apiKeyCacheSeconds: Int = 30,
        trustedProxies: [IPNetwork] = [],
        securityContact: String = "mailto:security@example.com",
        publicURL: String = "http://127.0.0.1:8080",
        allowlistCacheSeconds: Int = 5,
        idleTimeoutSeconds: Int = 30,
        bodySeconds: Int = 10,
        callTimeoutSeconds: Int = 10,
        tls: GatewayTLS? = nil,
        apiLimitFailsOpen: Bool = false,
        stepUpSeconds: Int = 300
    ) {
        self.issuer = issuer
        self.clockLeewaySeconds = clockLeewaySeconds
        self.apiKeyCacheSeconds = apiKeyCacheSeconds
        self.trustedProxies = trustedProxies
        self.securityContact = securityContact
        self.publicURL = publicURL
        self.allowlistCacheSeconds = allowlistCacheSeconds
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.bodySeconds = bodySeconds
        self.callTimeoutSeconds = callTimeoutSeconds
        self.tls = tls
        self.apiLimitFailsOpen = apiLimitFailsOpen
        self.stepUpSeconds = stepUpSeconds
    }

    public init(reader: inout EnvironmentReader) {
        let contact = reader.string("gateway.security-contact", default: "mailto:security@example.com")
        if !(contact.hasPrefix("mailto:") || contact.hasPrefix("https://")) || contact.utf8.count > 256
            || contact.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        {
            reader.problem("RAMPART_GATEWAY_SECURITY_CONTACT must be a mailto: or https:// URI (RFC 9116)")
        }
        let publicURL = reader.string("gateway.public-url", default: "http://127.0.0.1:8080")
        if !Self.isPublicURL(publicURL) {
            reader.problem(
                "RAMPART_GATEWAY_PUBLIC_URL must be an http:// or https:// address with no path, query or spaces, e.g. https://id.example.com"
            )
        }
        self.init(
            issuer: reader.string("gateway.token-issuer", default: "rampart"),
            clockLeewaySeconds: reader.int("gateway.clock-leeway-seconds", default: 30, range: 0...AccessTokenVerifier.maximumLeewaySeconds),
            apiKeyCacheSeconds: reader.int("gateway.api-key-cache-seconds", default: 30, range: 1...60),
            trustedProxies: reader.networks("gateway.trusted-proxies"),
            securityContact: contact,
            publicURL: publicURL,
            allowlistCacheSeconds: reader.int("gateway.allowlist-cache-seconds", default: 5, range: 1...60),
            idleTimeoutSeconds: reader.int("gateway.idle-timeout-seconds", default: 30, range: 1...600),
            bodySeconds: reader.int("gateway.body-seconds", default: 10, range: 1...300),
            callTimeoutSeconds: reader.int("gateway.call-timeout-seconds", default: 10, range: 1...120),
            tls: Self.tls(&reader),
            apiLimitFailsOpen: reader.choice("gateway.api-limit-failure", default: FailureMode.closed) == .open,
            stepUpSeconds: reader.int("gateway.step-up-seconds", default: 300, range: 30...3600)
        )
    }

    enum FailureMode: String, CaseIterable { case open, closed }

    /// `http(s)://host[:port]`, nothing after: it is spliced into security.txt's lines.
    static func isPublicURL(_ text: String) -> Bool {
        guard text.utf8.count <= 256, let rest = ["https://", "http://"].first(where: text.hasPrefix).map({ text.dropFirst($0.count) }),
            !rest.isEmpty
        else { return false }
        return rest.unicodeScalars.allSatisfy {
            $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || ".-:[]".unicodeScalars.contains($0))
        }
    }

    private static func tls(_ reader: inout EnvironmentReader) -> GatewayTLS? {
        let certificate = reader.optionalString("gateway.tls.certificate")
        let key = reader.optionalString("gateway.tls.key")
        let redirectPort = reader.int("gateway.tls.redirect-port", default: 8081, range: 0...65535)
        let advertisedPort = reader.optionalString("gateway.tls.advertised-port")
        guard let certificate, let key else {
            if certificate != nil || key != nil {
                reader.problem("RAMPART_GATEWAY_TLS_CERTIFICATE and RAMPART_GATEWAY_TLS_KEY go together: set both or neither")
            }
            return nil
        }
        var tls = GatewayTLS(certificatePath: certificate, keyPath: key, redirectPort: redirectPort)
        if let advertisedPort {
            guard let port = Int(advertisedPort), (1...65535).contains(port) else {
                reader.problem("RAMPART_GATEWAY_TLS_ADVERTISED_PORT must be a port number")
                return nil
            }
            tls.advertisedPort = port
        }
        do {
            _ = try tls.configuration()
        } catch {
            reader.problem("the TLS certificate or key cannot be used: \(error)")
        }
        return tls
    }
}
