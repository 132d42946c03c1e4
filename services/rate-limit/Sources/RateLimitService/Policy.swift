import RateLimitKit

/// A named limit (RL-1): what it counts by, how many units per window, and how it counts.
public struct RateLimitPolicy: Sendable, Equatable {
    public enum KeyKind: String, Sendable, CaseIterable {
        /// A client address, grouped by network (an IPv6 /64 by default).
        case ip
        /// An account identifier (e.g. the e-mail address a login names), case-insensitive.
        case account
        case apiKey = "api_key"
        case tenant
    }

    public enum Algorithm: String, Sendable, CaseIterable {
        case slidingWindow = "sliding_window"
        case gcra
    }

    public var name: String
    public var key: KeyKind
    public var limit: UInt32
    public var windowSeconds: UInt32
    public var algorithm: Algorithm
    /// Whether a call may carry its key's own limit (an API key's stored limit, KEY-3).
    public var perKeyLimit: Bool

    public init(name: String, key: KeyKind, limit: UInt32, windowSeconds: UInt32, algorithm: Algorithm = .slidingWindow, perKeyLimit: Bool = false) {
        self.name = name
        self.key = key
        self.limit = limit
        self.windowSeconds = windowSeconds
        self.algorithm = algorithm
        self.perKeyLimit = perKeyLimit
    }

    /// The sliding window stores one entry per admitted call: above this, use GCRA.
    public static let slidingWindowLimitCap: UInt32 = 1000
    public static let gcraLimitCap: UInt32 = 1_000_000
    public static let windowSecondsCap: UInt32 = 7 * 24 * 3600

    /// SPEC RL-1, AUTH-6, TEN-6, KEY-3.
    public static let defaults: [RateLimitPolicy] = [
        RateLimitPolicy(name: "login", key: .ip, limit: 5, windowSeconds: 60),
        // Wrong passwords only (a right one gives its unit back); from a device that signed in to
        // the account before, counted per device instead (issue 26, finding 3).
        RateLimitPolicy(name: "login_account", key: .account, limit: 5, windowSeconds: 15 * 60),
        RateLimitPolicy(name: "login_device", key: .account, limit: 5, windowSeconds: 15 * 60),
        RateLimitPolicy(name: "register", key: .ip, limit: 3, windowSeconds: 3600),
        RateLimitPolicy(name: "register_daily", key: .ip, limit: 3, windowSeconds: 24 * 3600),
        RateLimitPolicy(name: "api", key: .ip, limit: 60, windowSeconds: 60),
        RateLimitPolicy(name: "upload", key: .ip, limit: 10, windowSeconds: 60),
        RateLimitPolicy(name: "api_key", key: .apiKey, limit: 60, windowSeconds: 60, algorithm: .gcra, perKeyLimit: true),
        // A signed-in person proving it again (password change, MFA enrolment and off, step-up):
        // a stolen session guesses no faster than a sign-in.
        RateLimitPolicy(name: "account_proof", key: .account, limit: 5, windowSeconds: 15 * 60),
        // AUTH-8: another verification mail, per account.
        RateLimitPolicy(name: "verification_resend", key: .account, limit: 3, windowSeconds: 3600),
        // AUTH-10: mails to one address, whatever asks for them (a reset form cannot flood a mailbox).
        RateLimitPolicy(name: "mail_recipient", key: .account, limit: 10, windowSeconds: 3600),
    ]

    /// Names are what RateLimit-Policy carries, quoted: keep them plain.
    static func isValidName(_ name: String) -> Bool {
        (1...32).contains(name.utf8.count)
            && name.utf8.allSatisfy {
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                    || $0 == UInt8(ascii: "_")
            }
    }

    /// Problems with this policy, for the configuration error.
    func problems() -> [String] {
        var problems: [String] = []
        if !Self.isValidName(name) { problems.append("policy name \(name.debugDescription) must be 1 to 32 of a-z 0-9 _") }
        let cap = algorithm == .slidingWindow ? Self.slidingWindowLimitCap : Self.gcraLimitCap
        if !(1...cap).contains(limit) { problems.append("policy \(name): limit must be 1 to \(cap) with \(algorithm.rawValue), not \(limit)") }
        if !(1...Self.windowSecondsCap).contains(windowSeconds) {
            problems.append("policy \(name): window must be 1 to \(Self.windowSecondsCap) seconds, not \(windowSeconds)")
        }
        return problems
    }

    func quota(limitOverride: UInt32) -> Quota {
        Quota(limit: limitOverride == 0 ? limit : limitOverride, windowMilliseconds: Int64(windowSeconds) * 1000)
    }
}
