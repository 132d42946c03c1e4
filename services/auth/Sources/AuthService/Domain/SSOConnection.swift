import RampartModels

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A tenant's OpenID Connect provider (SSO-1) as auth keeps it; the client secret apart, sealed.
struct SSOConnection: Sendable, Equatable {
    var id: UUID
    var preset: Preset
    var issuer: String
    var clientID: String
    var domains: [String]
    var testUsers: [String]
    var state: State
    var claimMapping: [String: String]
    var trustProviderMFA: Bool
    var idTokenAlgorithms: [String]
    var createdAtMs: Int64 = 0
    var updatedAtMs: Int64 = 0

    /// The providers the console offers by name; `oidc` is any other.
    enum Preset: String, CaseIterable, Sendable {
        case google, microsoft, okta, oidc

        static let googleIssuer = "https://accounts.google.com"

        /// The issuer the connection uses: Google's is fixed, Entra's is made from the directory
        /// (a single tenant: `common` and the like would let any Microsoft account in), Okta's
        /// and any other provider's are given.
        func issuer(given: String, directory: String) throws(RampartError) -> String {
            switch self {
            case .google:
                guard given.isEmpty || given == Self.googleIssuer else {
                    throw .invalidArgument("google's issuer is \(Self.googleIssuer); leave issuer out", field: "issuer")
                }
                return Self.googleIssuer
            case .microsoft:
                if directory.isEmpty, !given.isEmpty { return try SSOConnection.checkedIssuer(given) }
                let shared = ["common", "organizations", "consumers"]
                guard !shared.contains(directory.lowercased()),
                    directory.utf8.count <= 253, UUID(uuidString: directory) != nil || SSOConnection.isDomain(directory.lowercased())
                else {
                    throw .invalidArgument(
                        "directory must be your Entra tenant ID (a UUID) or its primary domain; common, organizations and consumers would admit any Microsoft account",
                        field: "directory"
                    )
                }
                return "https://login.microsoftonline.com/\(directory.lowercased())/v2.0"
            case .okta, .oidc:
                return try SSOConnection.checkedIssuer(given)
            }
        }
    }

    /// draft: nobody signs in through it; testing: its test users only; active: every member,
    /// and people of its verified domains (SSO-2). Any state may follow any other.
    enum State: String, CaseIterable, Sendable {
        case draft, testing, active
    }

    static let maximumDomains = 20
    static let maximumTestUsers = 20
    static let mappableClaims: Set<String> = ["email", "name"]

    // MARK: Rules of each field

    /// An http(s) URL with a host and no query, fragment or credentials (OpenID Connect
    /// Discovery 2); kept as written, since ID tokens must name it exactly. Whether it may be
    /// called (the SSRF guard, https) is checked by calling it.
    static func checkedIssuer(_ text: String) throws(RampartError) -> String {
        let problem = RampartError.invalidArgument(
            "issuer must be the provider's issuer URL, https://… with no query or fragment, at most 512 characters",
            field: "issuer"
        )
        guard !text.isEmpty, text.utf8.count <= 512, text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }),
            text.hasPrefix("https://") || text.hasPrefix("http://"), !text.contains("?"), !text.contains("#")
        else { throw problem }
        let authority = text.split(separator: "/", omittingEmptySubsequences: false).dropFirst(2).first ?? ""
        guard !authority.isEmpty, !authority.contains("@") else { throw problem }
        return text
    }

    static func checkedClientID(_ text: String) throws(RampartError) -> String {
        guard (1...256).contains(text.utf8.count), text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            throw .invalidArgument("client_id must be 1 to 256 printable ASCII characters without spaces", field: "client_id")
        }
        return text
    }

    static func checkedClientSecret(_ text: String) throws(RampartError) -> String {
        guard (1...512).contains(text.utf8.count), text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            throw .invalidArgument("client_secret must be 1 to 512 printable ASCII characters without spaces", field: "client_secret")
        }
        return text
    }

    /// Lower-cased host names, duplicates dropped.
    static func checkedDomains(_ domains: [String]) throws(RampartError) -> [String] {
        var kept: [String] = []
        for domain in domains {
            let name = domain.lowercased()
            guard isDomain(name) else {
                throw .invalidArgument("\(String(domain.prefix(64)).debugDescription) is not a domain name such as example.com", field: "domains")
            }
            if !kept.contains(name) { kept.append(name) }
        }
        guard kept.count <= maximumDomains else { throw .invalidArgument("at most \(maximumDomains) domains", field: "domains") }
        return kept
    }

    /// Addresses as `EmailAddress` writes them, duplicates dropped.
    static func checkedTestUsers(_ users: [String]) throws(RampartError) -> [String] {
        var kept: [String] = []
        for user in users {
            guard let email = EmailAddress(user) else {
                throw .invalidArgument("\(String(user.prefix(64)).debugDescription) is not an email address", field: "test_users")
            }
            if !kept.contains(email.description) { kept.append(email.description) }
        }
        guard kept.count <= maximumTestUsers else { throw .invalidArgument("at most \(maximumTestUsers) test users", field: "test_users") }
        return kept
    }

    static func checkedClaimMapping(_ mapping: [String: String]) throws(RampartError) -> [String: String] {
        let claimName = /[A-Za-z0-9_:.\-]{1,64}/
        for (key, value) in mapping {
            guard mappableClaims.contains(key) else {
                throw .invalidArgument(
                    "claim_mapping maps email and name only, not \(String(key.prefix(64)).debugDescription)",
                    field: "claim_mapping"
                )
            }
            guard (try? claimName.wholeMatch(in: value)) != nil else {
                throw .invalidArgument("claim_mapping.\(key) must be a claim name of 1 to 64 letters, digits, _ : . or -", field: "claim_mapping")
            }
        }
        return mapping
    }

    static func checkedAlgorithms(_ names: [String]) throws(RampartError) -> [String] {
        var kept: [String] = []
        for name in names {
            guard SigningAlgorithm(rawValue: name) != nil else {
                let known = SigningAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")
                throw .invalidArgument(
                    "id_token_algorithms takes \(known); not \(String(name.prefix(16)).debugDescription)",
                    field: "id_token_algorithms"
                )
            }
            if !kept.contains(name) { kept.append(name) }
        }
        return kept
    }

    static func checkedState(_ text: String) throws(RampartError) -> State {
        guard let state = State(rawValue: text) else { throw .invalidArgument("state must be draft, testing or active", field: "state") }
        return state
    }

    /// A host name as an email address's domain may be one (the same rules as sign-up's).
    static func isDomain(_ name: String) -> Bool {
        name.contains(".") && EmailAddress("a@\(name)")?.domain == name
    }

    // MARK: What the API shows

    /// The connection as its tenant sees it: never the secret.
    func message(redirectURI: String) -> Rampart_V1_SsoConnection {
        var message = Rampart_V1_SsoConnection()
        message.connectionID = id.uuidString.lowercased()
        message.preset = preset.rawValue
        message.issuer = issuer
        message.clientID = clientID
        message.domains = domains
        message.testUsers = testUsers
        message.state = state.rawValue
        message.claimMapping = claimMapping
        message.trustProviderMfa = trustProviderMFA
        message.idTokenAlgorithms = idTokenAlgorithms
        message.redirectUri = redirectURI
        message.createdAtMs = createdAtMs
        message.updatedAtMs = updatedAtMs
        return message
    }

    /// The fields an audit event shows before and after a change: all but the secret.
    var auditSummary: String {
        let fields: [(String, String)] = [
            ("state", state.rawValue), ("issuer", issuer), ("client_id", clientID), ("domains", domains.joined(separator: ",")),
            ("test_users", testUsers.joined(separator: ",")), ("trust_provider_mfa", String(trustProviderMFA)),
            ("id_token_algorithms", idTokenAlgorithms.joined(separator: ",")),
            ("claim_mapping", claimMapping.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")),
        ]
        return fields.map { "\($0.0)=\($0.1.debugDescription)" }.joined(separator: " ")
    }
}
