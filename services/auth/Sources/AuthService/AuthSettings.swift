public import NIOCore
import RampartModels
public import ServiceKit
public import SodiumKit
import TokenKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// auth's own configuration.
public struct AuthSettings: Sendable {
    public var passwordAlgorithm: PasswordAlgorithm
    public var passwordPolicy: PasswordPolicy
    /// Threads that hash passwords; other work never waits behind them.
    public var hashThreads: Int
    /// A registration that never completed (auth stopped half-way) is removed after this long.
    public var pendingRegistrationSeconds: Int
    /// Seals the token signing keys auth stores.
    public var keyEncryption: KeyRing
    /// The mail sender's public key: reset and verification tokens are sealed to it.
    public var mailTokenKey: SealedBox.PublicKey
    /// The `iss` of every access token.
    public var issuer: String
    public var accessTokenSeconds: Int
    /// AUTH-3: a refresh token presented again within this many seconds of its first use gets
    /// the same successor instead of revoking the session (a client whose answer was lost).
    /// 0, the default, turns it off.
    public var refreshReuseSeconds: Int
    /// A session (and its refresh tokens) lasts this long without a new sign-in.
    public var sessionSeconds: Int
    /// A new signing key this often; the one it replaces verifies for an access token's life more.
    public var signingKeyRotationSeconds: Int
    /// PERM-3: the addresses of the platform's super-admins. Applied at every start: an address
    /// removed here loses the flag.
    public var superAdmins: Set<String>
    /// How wrong second-factor codes lock the factor (issue 26, finding 2).
    public var secondFactorLock = SecondFactorLock()
    /// The gateway's address as people reach it (`RAMPART_GATEWAY_PUBLIC_URL`, the gateway's own
    /// setting): SSO providers send people back to its callback.
    public var publicURL: String
    /// Networks SSO providers may be reached on although they are not public (WH-3's guard);
    /// `make run` allows loopback for providers started on this machine. None by default.
    public var ssoAllowedNetworks: [IPNetwork]
    /// The DNS resolver for domain verification (`RAMPART_DNS_SERVERS`, an IPv4 address with an
    /// optional port); nil: the system's.
    public var dnsServer: (address: String, port: Int)?
    /// How long a call to an SSO provider may take.
    public var ssoTimeoutSeconds = 10
    /// The platform's Google client for Sign in with Google (SSO-4); nil: not offered.
    public var google: GoogleClient?

    /// A client registered at Google by the operator, with the callback as its redirect URI.
    public struct GoogleClient: Sendable {
        /// Google's; another only for a provider standing in for it (tests, a staging double).
        public static let googleIssuer = "https://accounts.google.com"

        public var clientID: String
        public var clientSecret: String
        public var issuer: String

        public init(clientID: String, clientSecret: String, issuer: String = GoogleClient.googleIssuer) {
            self.clientID = clientID
            self.clientSecret = clientSecret
            self.issuer = issuer
        }
    }

    /// Where providers send people back after an SSO sign-in (SSO-3).
    var ssoRedirectURI: String { publicURL + "/v1/auth/sso/callback" }

    /// Wrong codes counted per account across sign-in challenges and signed-in proofs, only ever
    /// after the right password (or from a session): `threshold` within `windowSeconds` refuse
    /// every code for `firstLockSeconds`, doubled for each lock within the window after the
    /// last, up to `maximumLockSeconds`. Each failure past the threshold locks again.
    public struct SecondFactorLock: Sendable {
        public var threshold = 10
        public var windowSeconds = 86_400
        public var firstLockSeconds = 900
        public var maximumLockSeconds = 86_400

        public init() {}

        /// The length of the `lock`-th lock in a row (1-based).
        func seconds(lock: Int) -> Int {
            var seconds = firstLockSeconds
            for _ in 1..<max(lock, 1) where seconds < maximumLockSeconds { seconds *= 2 }
            return min(seconds, maximumLockSeconds)
        }
    }

    public init(
        passwordAlgorithm: PasswordAlgorithm = .bcrypt(cost: PasswordAlgorithm.defaultBcryptCost),
        extraCommonPasswords: Set<String> = [],
        hashThreads: Int = System.coreCount,
        pendingRegistrationSeconds: Int = 600,
        keyEncryption: KeyRing = try! KeyRing(currentKeyID: "auth-1", keys: ["auth-1": .generate()]),
        mailTokenKey: SealedBox.PublicKey = MailTokens.throwawayKey(),
        issuer: String = "rampart",
        accessTokenSeconds: Int = 900,
        refreshReuseSeconds: Int = 0,
        sessionSeconds: Int = 30 * 86_400,
        signingKeyRotationSeconds: Int = 30 * 86_400,
        superAdmins: Set<String> = [],
        publicURL: String = "http://127.0.0.1:8080",
        ssoAllowedNetworks: [IPNetwork] = []
    ) {
        self.passwordAlgorithm = passwordAlgorithm
        passwordPolicy = PasswordPolicy(extraCommon: extraCommonPasswords, maximumBytes: passwordAlgorithm.maximumPasswordBytes)
        self.hashThreads = hashThreads
        self.pendingRegistrationSeconds = pendingRegistrationSeconds
        self.keyEncryption = keyEncryption
        self.mailTokenKey = mailTokenKey
        self.issuer = issuer
        self.accessTokenSeconds = accessTokenSeconds
        self.refreshReuseSeconds = refreshReuseSeconds
        self.sessionSeconds = sessionSeconds
        self.signingKeyRotationSeconds = signingKeyRotationSeconds
        self.superAdmins = superAdmins
        self.publicURL = publicURL
        self.ssoAllowedNetworks = ssoAllowedNetworks
    }

    /// A reset link works this long (AUTH-7); a verification link a week.
    static let passwordResetSeconds = 1800
    static let emailVerificationSeconds = 7 * 86_400

    /// How long a replaced signing key keeps verifying: every token it signed, plus a margin.
    var signingKeyOverlapSeconds: Int { accessTokenSeconds + 3600 }
    /// How long a revocation stays in the gateways' set: past the last access token's expiry
    /// with the most leeway a gateway may be given (issue 26, finding 13), which is also longer
    /// than any gateway's API key cache (at most 60 s).
    var revocationSeconds: Int { accessTokenSeconds + AccessTokenVerifier.maximumLeewaySeconds + 60 }

    public enum HashName: String, CaseIterable, Sendable {
        case bcrypt, argon2id
    }

    /// `RAMPART_AUTH_PASSWORD_HASH` (bcrypt or argon2id), `RAMPART_AUTH_BCRYPT_COST` (12, never
    /// below 10), `RAMPART_AUTH_COMMON_PASSWORDS_FILE` (one password per line, added to the
    /// built-in list), `RAMPART_AUTH_HASH_THREADS` (the cores), `RAMPART_AUTH_KEY_ENCRYPTION_KEYS`
    /// (required), `RAMPART_MAIL_TOKEN_PUBLIC_KEY` (required), `RAMPART_AUTH_ISSUER`, `RAMPART_AUTH_ACCESS_TOKEN_SECONDS` (900),
    /// `RAMPART_AUTH_REFRESH_REUSE_SECONDS` (0: off; at most 60),
    /// `RAMPART_AUTH_SESSION_SECONDS` (30 days), `RAMPART_AUTH_SIGNING_KEY_ROTATION_SECONDS` (30 days),
    /// `RAMPART_AUTH_SUPER_ADMINS` (comma-separated addresses; none by default),
    /// `RAMPART_GATEWAY_PUBLIC_URL` (http://127.0.0.1:8080), `RAMPART_AUTH_SSO_ALLOWED_NETWORKS`
    /// (comma-separated CIDR networks; none by default), `RAMPART_DNS_SERVERS` (the system's
    /// resolvers by default), `RAMPART_AUTH_GOOGLE_CLIENT_ID` and `_SECRET` (both or neither;
    /// Sign in with Google is offered with them), `RAMPART_AUTH_GOOGLE_ISSUER` (Google's).
    public init(reader: inout EnvironmentReader) {
        let cost = reader.int("auth.bcrypt-cost", default: PasswordAlgorithm.defaultBcryptCost, range: PasswordAlgorithm.minimumBcryptCost...16)
        let algorithm: PasswordAlgorithm =
            switch reader.choice("auth.password-hash", default: HashName.bcrypt) {
            case .bcrypt: .bcrypt(cost: cost)
            case .argon2id: .argon2id(.interactive)
            }
        var extra: Set<String> = []
        if let path = reader.optionalString("auth.common-passwords-file") {
            if let data = FileManager.default.contents(atPath: path) {
                extra = PasswordPolicy.parseList(String(decoding: data, as: UTF8.self))
            } else {
                reader.problem("RAMPART_AUTH_COMMON_PASSWORDS_FILE: cannot read \(path)")
            }
        }
        let keyRing = reader.keyRing("auth.key-encryption-keys")
        var superAdmins: Set<String> = []
        for text in reader.string("auth.super-admins", default: "").split(separator: ",") {
            guard let email = EmailAddress(String(text).trimmingWhitespace) else {
                reader.problem("RAMPART_AUTH_SUPER_ADMINS must be comma-separated email addresses")
                break
            }
            superAdmins.insert(email.description)
        }
        self.init(
            passwordAlgorithm: algorithm,
            extraCommonPasswords: extra,
            hashThreads: reader.int("auth.hash-threads", default: System.coreCount, range: 1...256),
            keyEncryption: keyRing,
            mailTokenKey: reader.mailTokenPublicKey(),
            issuer: reader.string("auth.issuer", default: "rampart"),
            accessTokenSeconds: reader.int("auth.access-token-seconds", default: 900, range: 60...3600),
            refreshReuseSeconds: reader.int("auth.refresh-reuse-seconds", default: 0, range: 0...60),
            sessionSeconds: reader.int("auth.session-seconds", default: 30 * 86_400, range: 3600...(365 * 86_400)),
            signingKeyRotationSeconds: reader.int("auth.signing-key-rotation-seconds", default: 30 * 86_400, range: 3600...(365 * 86_400)),
            superAdmins: superAdmins,
            // The gateway checks the address's form at its start; auth only appends the path.
            publicURL: reader.string("gateway.public-url", default: "http://127.0.0.1:8080"),
            ssoAllowedNetworks: reader.networks("auth.sso-allowed-networks")
        )
        if let servers = reader.optionalString("dns.servers") {
            dnsServer = TXTRecords.server(String(servers.split(separator: ",").first ?? ""))
            if dnsServer == nil { reader.problem("RAMPART_DNS_SERVERS must be an IPv4 address with an optional port, such as 10.0.0.2:53") }
        }
        let googleIssuer = reader.string("auth.google-issuer", default: GoogleClient.googleIssuer)
        switch (reader.optionalString("auth.google-client-id"), reader.optionalString("auth.google-client-secret", secret: true)) {
        case (let id?, let secret?):
            google = GoogleClient(clientID: id, clientSecret: secret, issuer: googleIssuer)
        case (nil, nil):
            break
        default:
            reader.problem("RAMPART_AUTH_GOOGLE_CLIENT_ID and RAMPART_AUTH_GOOGLE_CLIENT_SECRET go together: set both, or neither")
        }
    }
}
