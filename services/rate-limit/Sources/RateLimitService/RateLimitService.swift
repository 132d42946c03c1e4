import Logging
import NATSKit
import RampartModels
import RateLimitKit
public import ServiceKit
import ServiceLifecycle
import SodiumKit

/// Global rate limits and bans on NATS key-value (SPEC section 8).
///
/// Every replica shares the counters and bans through two JetStream key-value buckets, so a
/// limit holds across all of them (RL-2); each replica also watches the bans bucket and refuses
/// a banned network without a round trip.
public enum RateLimitService {
    /// `clock` is Unix milliseconds; tests may move it.
    public static func descriptor(
        settings: RateLimitSettings = RateLimitSettings(),
        clock: @escaping @Sendable () -> Int64 = { WallClock.milliseconds() }
    ) -> ServiceDescriptor {
        ServiceDescriptor(name: .rateLimit) { context in try await build(context, settings: settings, clock: clock) }
    }

    /// Creates (or updates) both buckets; the handlers answer once every ban is loaded.
    static func build(_ context: ServiceContext, settings: RateLimitSettings, clock: @escaping @Sendable () -> Int64) async throws -> ServiceParts {
        let longestWindow = max(
            settings.policies.values.map(\.windowSeconds).max() ?? 60,
            settings.fail2ban.windowSeconds,
            settings.escalation.windowSeconds
        )
        let counters = try await context.jetStream.ensureKeyValue(
            .init(
                bucket: Subjects.RateLimit.countersBucket,
                // Nothing outlives its window: a counter untouched for that long is empty anyway.
                ttl: .seconds(Int64(longestWindow)),
                maxValueSize: 16 * 1024,
                storage: settings.counterStorage == .file ? .file : .memory
            )
        )
        let bansBucket = try await context.jetStream.ensureKeyValue(
            .init(
                bucket: Subjects.RateLimit.bansBucket,
                ttl: .seconds(settings.fail2ban.memorySeconds),
                maxValueSize: 4 * 1024,
                storage: .file
            )
        )
        try await context.audit.requireStream()
        let banList = BanList(connection: context.nats, logger: context.logger)
        let limiter = Limiter(bucket: counters, logger: context.logger, clock: clock)
        let engine = Engine(
            settings: settings,
            limiter: limiter,
            bans: Bans(
                bucket: bansBucket,
                list: banList,
                limiter: limiter,
                settings: settings,
                audit: context.audit,
                clock: clock,
                logger: context.logger
            ),
            clock: clock,
            logger: context.logger
        )

        var router = RPCRouter()
        router.register(Subjects.RateLimit.check) { (request, call) in
            try await engine.check(request, clientIP: call.clientIP)
        }
        router.register(Subjects.RateLimit.refund) { (request, _) in
            try await engine.check(request, clientIP: nil, refunding: true)
        }
        router.register(Subjects.RateLimit.batchCheck) { (request, call) in
            try await engine.check(request, requestID: call.requestID)
        }
        router.register(Subjects.RateLimit.reportFailure) { (request, _) in
            guard let address = IPNetwork(address: request.ip) else {
                throw RampartError(.invalidArgument, "ip must be an IPv4 or IPv6 address", details: ["field": "ip"])
            }
            guard request.kind != .unspecified, Rampart_V1_FailureKind.allCases.contains(request.kind) else {
                throw RampartError(.invalidArgument, "kind must be login, mfa, api_key or password", details: ["field": "kind"])
            }
            return try await engine.bans.reportFailure(from: address, kind: request.kind)
        }
        router.register(Subjects.RateLimit.listBans, requires: .principal) { (_, _) in
            var reply = Rampart_V1_ListBansReply()
            reply.bans = engine.bans.list.activeBans(now: engine.clock())
            return reply
        }
        router.register(Subjects.RateLimit.unban, requires: .principal) { (request, call) in
            guard let given = IPNetwork(cidr: request.network) else {
                throw RampartError(.invalidArgument, "network must be an address or a CIDR network", details: ["field": "network"])
            }
            // A bare address names the network it is grouped into.
            let network = given.prefixLength == given.bytes.count * 8 ? settings.grouping.network(of: given) : given
            return try await engine.bans.unban(network, context: call)
        }
        return ServiceParts(
            routes: router,
            services: [banList, CounterUpdates(limiter: limiter, health: context.health, logger: context.logger)],
            beforeServing: { await banList.waitUntilCaughtUp() }
        )
    }

    /// Feeds the bucket's updates to the limiter (see `Limiter`) from the moment the handlers
    /// serve, as escalation learns of the other replicas' writes from them alone.
    struct CounterUpdates: Service {
        let limiter: Limiter
        let health: HealthChecks
        let logger: Logger

        func run() async throws {
            await health.waitUntilStarted()
            await repeatUntilShutdown("counter updates", logger: logger) {
                try await limiter.followUpdates()
            }
        }
    }

    struct Engine: Sendable {
        let settings: RateLimitSettings
        let limiter: Limiter
        let bans: Bans
        let clock: @Sendable () -> Int64
        let logger: Logger

        static let maximumKeyBytes = 256

        static let maximumBatchChecks = 256

        /// Decides every check of a batch at once; one that cannot be decided fails alone.
        func check(_ batch: Rampart_V1_RateLimitBatchCheckRequest, requestID: String) async throws -> Rampart_V1_RateLimitBatchCheckReply {
            guard (1...Self.maximumBatchChecks).contains(batch.checks.count) else {
                throw RampartError(.invalidArgument, "checks must hold 1 to \(Self.maximumBatchChecks) checks", details: ["field": "checks"])
            }
            let results = await withTaskGroup(of: (Int, Rampart_V1_RateLimitBatchResult).self) { group in
                for (index, item) in batch.checks.enumerated() {
                    group.addTask {
                        var result = Rampart_V1_RateLimitBatchResult()
                        do {
                            // An empty address is no address; anything else must be one.
                            guard item.clientIp.isEmpty || IPNetwork(address: item.clientIp) != nil else {
                                throw RampartError(.invalidArgument, "client_ip must be an IPv4 or IPv6 address", details: ["field": "client_ip"])
                            }
                            result.decision = try await check(item.check, clientIP: item.clientIp.isEmpty ? nil : item.clientIp)
                        } catch let error as RampartError {
                            result.error = error.proto(requestID: requestID)
                        } catch {
                            result.error = RampartError.internalError().proto(requestID: requestID)
                        }
                        return (index, result)
                    }
                }
                var results = [Rampart_V1_RateLimitBatchResult](repeating: .init(), count: batch.checks.count)
                for await (index, result) in group { results[index] = result }
                return results
            }
            var reply = Rampart_V1_RateLimitBatchCheckReply()
            reply.results = results
            return reply
        }

        /// `clientIP`: the address the call is made for, whose network's ban refuses it too.
        /// A refund comes only through its own subject (`refunding`), which NATS can grant to
        /// fewer callers than checks.
        func check(
            _ request: Rampart_V1_RateLimitCheckRequest,
            clientIP: String?,
            refunding: Bool = false
        ) async throws -> Rampart_V1_RateLimitDecision {
            guard !request.refund || refunding else {
                throw RampartError(.invalidArgument, "a refund is an operation of its own, not a check", details: ["field": "refund"])
            }
            guard let policy = settings.policies[request.policy] else {
                throw RampartError(.invalidArgument, "unknown policy \(request.policy.prefix(64).debugDescription)", details: ["field": "policy"])
            }
            if request.limit != 0 {
                guard policy.perKeyLimit else {
                    throw RampartError(.invalidArgument, "policy \(policy.name) does not take a per-key limit", details: ["field": "limit"])
                }
                let cap = policy.algorithm == .slidingWindow ? RateLimitPolicy.slidingWindowLimitCap : RateLimitPolicy.gcraLimitCap
                guard request.limit <= cap else {
                    throw RampartError(.invalidArgument, "limit must be at most \(cap)", details: ["field": "limit"])
                }
            }
            let quota = policy.quota(limitOverride: request.limit)
            let cost = max(request.cost, 1)
            guard cost <= quota.limit else {
                throw RampartError(.invalidArgument, "cost \(cost) exceeds the limit \(quota.limit)", details: ["field": "cost"])
            }
            let (canonicalKey, address) = try canonical(request.key, as: policy.key)

            var decision = Rampart_V1_RateLimitDecision()
            decision.policy = policy.name
            decision.limit = quota.limit
            decision.windowSeconds = policy.windowSeconds
            let now = clock()
            if !refunding,
                let ban = [address, clientIP.flatMap(IPNetwork.init(address:))].compactMap({ $0 }).lazy.compactMap({
                    bans.list.ban(covering: $0, now: now)
                }).first
            {
                decision.banned = true
                decision.retryAfterMs = UInt64(ban.untilMs - now)
                decision.resetMs = decision.retryAfterMs
                return decision
            }
            let call = Limiter.Call(cost: cost, quota: quota, algorithm: policy.algorithm, refund: refunding)
            // The wider network the policy escalated to, if any, counts as one beside the caller's.
            let network = address.map { settings.grouping.network(of: $0) }
            if !refunding, policy.key == .ip, let network, let wide = escalated(policy, from: network, now: now) {
                let verdict = try await limiter.admit(call, key: Self.counterKey(policy, wide.description))
                decision.apply(verdict)
                guard verdict.allowed else { return decision }
            }
            let verdict = try await limiter.admit(call, key: Self.counterKey(policy, canonicalKey))
            if decision.allowed, verdict.remaining > decision.remaining {
                // Allowed by the wider network, which has less left: say what binds.
                return decision
            }
            decision.apply(verdict)
            if !verdict.allowed, !refunding, policy.key == .ip, let network { await noteRefusal(policy, of: network) }
            return decision
        }

        static func counterKey(_ policy: RateLimitPolicy, _ canonicalKey: String) -> String {
            "\(policy.name).\(fingerprint(Array("\(policy.key.rawValue):\(canonicalKey)".utf8)).prefix(40))"
        }

        // MARK: Escalation (issue 26, finding 8)

        private func spreadKey(_ policy: RateLimitPolicy, _ network: IPNetwork) -> String { "spread.\(policy.name).\(network.storageKey)" }

        /// The widest network holding `network` whose spread for `policy` is full: enough of the
        /// networks inside it were refused within the window.
        private func escalated(_ policy: RateLimitPolicy, from network: IPNetwork, now: Int64) -> IPNetwork? {
            let escalation = settings.escalation
            return escalation.ladder(of: network).dropFirst().reversed().first {
                limiter.unitsHeld(spreadKey(policy, $0), windowMilliseconds: escalation.windowMilliseconds, now: now) >= escalation.threshold
            }
        }

        /// Counts `network`'s refusal towards the spread of the next wider network, once per
        /// window; a spread that fills escalates the policy to that network, whose escalation
        /// counts in turn towards the next.
        private func noteRefusal(_ policy: RateLimitPolicy, of network: IPNetwork) async {
            let escalation = settings.escalation
            let ladder = escalation.ladder(of: network)
            let once = Limiter.Call(cost: 1, quota: Quota(limit: 1, windowMilliseconds: escalation.windowMilliseconds), algorithm: .slidingWindow)
            let spread = Limiter.Call(
                cost: 1,
                quota: Quota(limit: escalation.threshold, windowMilliseconds: escalation.windowMilliseconds),
                algorithm: .slidingWindow
            )
            for (narrow, wide) in zip(ladder, ladder.dropFirst()) {
                do {
                    guard try await limiter.admit(once, key: "refused.\(policy.name).\(narrow.storageKey)").allowed else { return }
                    let verdict = try await limiter.admit(spread, key: spreadKey(policy, wide))
                    guard verdict.allowed, verdict.remaining == 0 else { return }
                    logger.notice("limit escalated to a wider network", metadata: ["policy": "\(policy.name)", "network": "\(wide)"])
                } catch {
                    // Escalation is a second line: the refusal stands without it.
                    logger.warning("limit escalation not counted", metadata: ["policy": "\(policy.name)", "error": "\(loggable(error))"])
                    return
                }
            }
        }

        /// The key as counted: an address becomes its network, an account is case-folded.
        private func canonical(_ key: String, as kind: RateLimitPolicy.KeyKind) throws -> (String, IPNetwork?) {
            guard !key.isEmpty, key.utf8.count <= Self.maximumKeyBytes else {
                throw RampartError(.invalidArgument, "key must be 1 to \(Self.maximumKeyBytes) bytes", details: ["field": "key"])
            }
            // Printable ASCII (an address, a key ID) has no control character: skip the Unicode scan.
            let printable = key.utf8.allSatisfy { (0x20..<0x7F).contains($0) }
            guard printable || !key.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw RampartError(.invalidArgument, "key must not contain control characters", details: ["field": "key"])
            }
            switch kind {
            case .ip:
                guard let address = IPNetwork(address: key) else {
                    throw RampartError(.invalidArgument, "key must be an IPv4 or IPv6 address for this policy", details: ["field": "key"])
                }
                return (settings.grouping.network(of: address).description, address)
            case .account:
                // Auth normalises addresses before it asks; padding must not make a fresh account anyway.
                let trimmed = key.unicodeScalars.drop { $0.properties.isWhitespace }.reversed().drop { $0.properties.isWhitespace }.reversed()
                return (String(String.UnicodeScalarView(trimmed)).lowercased(), nil)
            case .apiKey:
                return (key, nil)
            case .tenant:
                guard let tenant = TenantID(key) else {
                    throw RampartError(.invalidArgument, "key must be a tenant ID for this policy", details: ["field": "key"])
                }
                return (tenant.hex, nil)
            }
        }
    }
}

extension Rampart_V1_RateLimitDecision {
    fileprivate mutating func apply(_ verdict: Verdict) {
        allowed = verdict.allowed
        remaining = verdict.remaining
        resetMs = UInt64(max(0, verdict.resetMilliseconds))
        retryAfterMs = UInt64(max(0, verdict.retryAfterMilliseconds))
    }
}
