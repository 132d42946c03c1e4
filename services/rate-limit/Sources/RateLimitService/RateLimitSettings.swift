import RateLimitKit
public import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// rate-limit's own configuration, read with the rest of the environment so that every problem
/// is reported at once.
///
/// Policies start from `RateLimitPolicy.defaults`; a JSON file (`RAMPART_RATELIMIT_POLICIES_FILE`)
/// changes or adds policies, and `RAMPART_RATELIMIT_POLICY_<NAME>=<limit>/<window seconds>`
/// overrides one policy's numbers last.
public struct RateLimitSettings: Sendable {
    public struct Fail2Ban: Sendable, Equatable {
        /// Failures within `windowSeconds` that ban the network.
        public var threshold: UInt32 = 10
        public var windowSeconds: UInt32 = 600
        /// The first ban; each repeat within `memorySeconds` lasts `growth` times longer, up to `maximumSeconds`.
        public var banSeconds: Int64 = 900
        public var growth: Int64 = 4
        public var maximumSeconds: Int64 = 7 * 24 * 3600
        /// How long a network's offences are remembered.
        public var memorySeconds: Int64 = 30 * 24 * 3600

        public init() {}

        /// The length of the `offence`-th ban (1-based).
        func banMilliseconds(offence: UInt32) -> Int64 {
            var seconds = banSeconds
            for _ in 1..<max(offence, 1) where seconds < maximumSeconds { seconds *= growth }
            return min(seconds, maximumSeconds) * 1000
        }
    }

    /// Issue 26, finding 8: a routed IPv6 /48 holds 65,536 /64s, each a fresh counter and a
    /// fresh ban. When `threshold` /64s of one /56 are refused by a policy within `windowSeconds`,
    /// the policy counts the /56 as one network too while that lasts; when `threshold` of them
    /// are banned, the /56 is banned. The same again from /56s to their /48.
    public struct Escalation: Sendable, Equatable {
        /// The wider prefixes, in the order they are reached: each shorter than the one before,
        /// the first shorter than the grouping's. Empty: no escalation.
        public var prefixLengths: [Int] = [56, 48]
        public var threshold: UInt32 = 4
        public var windowSeconds: UInt32 = 3600

        public init() {}

        /// `network` (as grouped) and the wider networks holding it, narrowest first; only
        /// `network` for IPv4.
        func ladder(of network: IPNetwork) -> [IPNetwork] {
            network.isIPv4 ? [network] : [network] + prefixLengths.filter { $0 < network.prefixLength }.map { network.widened(to: $0) }
        }

        var windowMilliseconds: Int64 { Int64(windowSeconds) * 1000 }
    }

    public enum Storage: String, Sendable, CaseIterable { case file, memory }

    public var policies: [String: RateLimitPolicy]
    public var grouping: IPGrouping
    /// Never banned (RL-3): the operator's own networks, health checkers.
    public var allowlist: [IPNetwork]
    public var fail2ban: Fail2Ban
    public var escalation: Escalation
    /// Where the counters bucket keeps its data. Memory is faster and loses counts only if every
    /// NATS server restarts at once; bans are always on file.
    public var counterStorage: Storage

    public init(
        policies: [RateLimitPolicy] = RateLimitPolicy.defaults,
        grouping: IPGrouping = IPGrouping(),
        allowlist: [IPNetwork] = [],
        fail2ban: Fail2Ban = Fail2Ban(),
        escalation: Escalation = Escalation(),
        counterStorage: Storage = .file
    ) {
        self.policies = Dictionary(policies.map { ($0.name, $0) }) { _, last in last }
        self.grouping = grouping
        self.allowlist = allowlist
        self.fail2ban = fail2ban
        self.escalation = escalation
        self.counterStorage = counterStorage
    }

    public init(reader: inout EnvironmentReader) {
        var policies = Dictionary(uniqueKeysWithValues: RateLimitPolicy.defaults.map { ($0.name, $0) })
        if let path = reader.optionalString("ratelimit.policies-file") {
            do {
                for policy in try Self.loadPolicies(path: path, over: policies) { policies[policy.name] = policy }
            } catch {
                reader.problem("RAMPART_RATELIMIT_POLICIES_FILE: \(error)")
            }
        }
        for name in policies.keys.sorted() {
            guard let text = reader.optionalString("ratelimit.policy.\(name)") else { continue }
            let parts = text.split(separator: "/")
            guard parts.count == 2, let limit = UInt32(parts[0]), let window = UInt32(parts[1]) else {
                reader.problem(
                    "\(EnvironmentReader.variableName("ratelimit.policy.\(name)")) must be <limit>/<window seconds>, not \(text.debugDescription)"
                )
                continue
            }
            policies[name]?.limit = limit
            policies[name]?.windowSeconds = window
        }
        for policy in policies.values.sorted(by: { $0.name < $1.name }) {
            for problem in policy.problems() { reader.problem(problem) }
        }
        self.policies = policies

        grouping = IPGrouping(
            ipv4PrefixLength: reader.int("ratelimit.ipv4-prefix", default: 32, range: 8...32),
            ipv6PrefixLength: reader.int("ratelimit.ipv6-prefix", default: 64, range: 16...128)
        )
        allowlist = reader.networks("ratelimit.allowlist")

        var fail2ban = Fail2Ban()
        fail2ban.threshold = UInt32(reader.int("ratelimit.ban.threshold", default: Int(fail2ban.threshold), range: 1...1000))
        fail2ban.windowSeconds = UInt32(reader.int("ratelimit.ban.window-seconds", default: Int(fail2ban.windowSeconds), range: 1...86400))
        fail2ban.banSeconds = Int64(reader.int("ratelimit.ban.seconds", default: Int(fail2ban.banSeconds), range: 1...31_536_000))
        fail2ban.growth = Int64(reader.int("ratelimit.ban.growth", default: Int(fail2ban.growth), range: 1...100))
        fail2ban.maximumSeconds = Int64(reader.int("ratelimit.ban.max-seconds", default: Int(fail2ban.maximumSeconds), range: 1...31_536_000))
        fail2ban.memorySeconds = Int64(reader.int("ratelimit.ban.memory-seconds", default: Int(fail2ban.memorySeconds), range: 60...31_536_000))
        if fail2ban.maximumSeconds < fail2ban.banSeconds {
            reader.problem("RAMPART_RATELIMIT_BAN_MAX_SECONDS is shorter than RAMPART_RATELIMIT_BAN_SECONDS")
        }
        self.fail2ban = fail2ban

        var configured = Escalation()
        var prefixes: [Int] = []
        // The defaults that are wider than the grouping (all of them unless it was widened).
        let groupingPrefix = grouping.ipv6PrefixLength
        let defaultPrefixes = configured.prefixLengths.filter { $0 < groupingPrefix }.map(String.init)
        for text in reader.list("ratelimit.escalation-prefixes", default: defaultPrefixes.isEmpty ? ["none"] : defaultPrefixes)
        where text != "none" {
            guard let prefix = Int(text), (16..<(prefixes.last ?? groupingPrefix)).contains(prefix) else {
                reader.problem(
                    "RAMPART_RATELIMIT_ESCALATION_PREFIXES: \(text.prefix(16).debugDescription) must be an IPv6 prefix length of 16 or more, shorter than RAMPART_RATELIMIT_IPV6_PREFIX and than the one before it (or none)"
                )
                continue
            }
            prefixes.append(prefix)
        }
        configured.prefixLengths = prefixes
        configured.threshold = UInt32(reader.int("ratelimit.escalation.threshold", default: Int(configured.threshold), range: 2...1000))
        configured.windowSeconds = UInt32(
            reader.int(
                "ratelimit.escalation.window-seconds",
                default: Int(configured.windowSeconds),
                range: 60...Int(RateLimitPolicy.windowSecondsCap)
            )
        )
        self.escalation = configured

        counterStorage = reader.choice("ratelimit.storage", default: .file)
    }

    /// One entry of the policies file. Fields left out keep the default policy's values; a new
    /// policy names at least its key, limit and window.
    private struct PolicyEntry: Decodable {
        var name: String
        var key: String?
        var limit: UInt32?
        var windowSeconds: UInt32?
        var algorithm: String?
        var perKeyLimit: Bool?

        enum CodingKeys: String, CodingKey {
            case name, key, limit, algorithm
            case windowSeconds = "window_seconds"
            case perKeyLimit = "per_key_limit"
        }
    }

    private struct PolicyFile: Decodable {
        var policies: [PolicyEntry]
    }

    struct PolicyFileError: Error, CustomStringConvertible {
        var description: String
    }

    static func loadPolicies(path: String, over defaults: [String: RateLimitPolicy]) throws -> [RateLimitPolicy] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw PolicyFileError(description: "cannot read \(path)")
        }
        let file: PolicyFile
        do {
            file = try JSONDecoder().decode(PolicyFile.self, from: data)
        } catch {
            throw PolicyFileError(
                description: "\(path) is not a policies file ({\"policies\": [{\"name\", \"key\", \"limit\", \"window_seconds\", …}]})"
            )
        }
        return try file.policies.map { entry in
            let base = defaults[entry.name]
            guard let keyText = entry.key ?? base?.key.rawValue, let limit = entry.limit ?? base?.limit,
                let window = entry.windowSeconds ?? base?.windowSeconds
            else {
                throw PolicyFileError(description: "policy \(entry.name.debugDescription) is new: it needs key, limit and window_seconds")
            }
            guard let key = RateLimitPolicy.KeyKind(rawValue: keyText) else {
                throw PolicyFileError(
                    description:
                        "policy \(entry.name): key must be one of \(RateLimitPolicy.KeyKind.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            let algorithmText = entry.algorithm ?? base?.algorithm.rawValue ?? RateLimitPolicy.Algorithm.slidingWindow.rawValue
            guard let algorithm = RateLimitPolicy.Algorithm(rawValue: algorithmText) else {
                throw PolicyFileError(description: "policy \(entry.name): algorithm must be sliding_window or gcra")
            }
            return RateLimitPolicy(
                name: entry.name,
                key: key,
                limit: limit,
                windowSeconds: window,
                algorithm: algorithm,
                perKeyLimit: entry.perKeyLimit ?? base?.perKeyLimit ?? false
            )
        }
    }
}
