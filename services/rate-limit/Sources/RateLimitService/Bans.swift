import Logging
import NATSKit
import RampartModels
import RateLimitKit
import ServiceKit
import SwiftProtobuf

/// Fail2ban (RL-3): failures are counted per network; at the threshold the network is banned,
/// for longer each time it offends again. Enough banned IPv6 networks inside a wider one within
/// the escalation window ban the wider one (issue 26, finding 8). Bans live in their own
/// bucket, which every replica and the gateway watch (`BanList`).
struct Bans: Sendable {
    let bucket: KeyValueBucket
    let list: BanList
    let limiter: Limiter
    let settings: RateLimitSettings
    let audit: AuditPublisher
    let clock: @Sendable () -> Int64
    let logger: Logger

    func reportFailure(from address: IPNetwork, kind: Rampart_V1_FailureKind) async throws -> Rampart_V1_ReportFailureReply {
        var reply = Rampart_V1_ReportFailureReply()
        if settings.allowlist.contains(where: { $0.contains(address) }) { return reply }
        let network = settings.grouping.network(of: address)
        let now = clock()
        if let ban = list.ban(covering: address, now: now) {
            reply.banned = true
            reply.ban = ban
            return reply
        }
        // Counted under the network's offence number: once it is banned, its count starts over
        // on every replica at once, without deleting anything.
        let offences = remembered(list.record(of: network), now: now)?.offences ?? 0
        let fail2ban = settings.fail2ban
        let verdict = try await limiter.admit(
            Limiter.Call(
                cost: 1,
                quota: Quota(limit: fail2ban.threshold, windowMilliseconds: Int64(fail2ban.windowSeconds) * 1000),
                algorithm: .slidingWindow
            ),
            key: "fail2ban.\(network.storageKey)_\(offences)"
        )
        reply.failures = fail2ban.threshold - verdict.remaining
        if verdict.allowed && verdict.remaining > 0 { return reply }
        reply.ban = try await ban(network, reason: "\(fail2ban.threshold) failures (last: \(kind.label)) within \(fail2ban.windowSeconds) s")
        reply.banned = true
        return reply
    }

    /// Bans `network`, unless a ban is already in force (two replicas reaching the threshold at
    /// once ban it once).
    private func ban(_ network: IPNetwork, reason: String) async throws -> Rampart_V1_Ban {
        for _ in 1...Limiter.maximumAttempts {
            let now = clock()
            let entry = try await bucket.latest(network.storageKey)
            let previous = entry.flatMap { $0.operation == .put ? try? Rampart_V1_Ban(serializedBytes: $0.value) : nil }
            if let previous, previous.untilMs > now { return previous }
            var ban = Rampart_V1_Ban()
            ban.network = network.description
            ban.bannedAtMs = now
            ban.offences = (remembered(previous, now: now)?.offences ?? 0) + 1
            ban.untilMs = now + settings.fail2ban.banMilliseconds(offence: ban.offences)
            ban.reason = reason
            do {
                try await write(ban, network: network, expectedRevision: entry?.revision ?? 0)
                logger.notice(
                    "network banned",
                    metadata: ["network": "\(ban.network)", "offences": "\(ban.offences)", "until_ms": "\(ban.untilMs)"]
                )
                await record(.networkBanned, ban, actor: Rampart_V1_AuditActor(service: .rateLimit), context: nil)
                await escalate(from: network)
                return ban
            } catch let error as NATSError where error.kind == .wrongLastRevision || error.kind == .keyExists {
                continue
            }
        }
        throw RampartError(.unavailable, "the ban list is too contended, retry")
    }

    /// Bans the next wider network of the escalation ladder once `threshold` networks of
    /// `network`'s size inside it were banned within the window (each counted once, by when its
    /// latest ban began), which may in turn ban the next.
    private func escalate(from network: IPNetwork) async {
        let escalation = settings.escalation
        let ladder = escalation.ladder(of: network)
        guard ladder.count > 1 else { return }
        let wide = ladder[1]
        let now = clock()
        let recent = list.records(inside: wide, prefixLength: network.prefixLength).filter { now - $0.bannedAtMs < escalation.windowMilliseconds }
        guard recent.count >= escalation.threshold, list.ban(covering: wide, now: now) == nil else { return }
        do {
            _ = try await ban(wide, reason: "\(recent.count) /\(network.prefixLength) networks inside banned within \(escalation.windowSeconds) s")
        } catch {
            logger.error("escalated ban not written", metadata: ["network": "\(wide)", "error": "\(loggable(error))"])
        }
    }

    /// Ends the ban on `network` now. The offence count stays: a repeat offender is still banned
    /// for longer next time.
    func unban(_ network: IPNetwork, context: CallContext) async throws -> Rampart_V1_UnbanReply {
        // The handler requires a principal: nobody lifts a ban anonymously.
        guard let principal = context.principal else { throw RampartError(.unauthenticated, "sign in first") }
        for _ in 1...Limiter.maximumAttempts {
            let now = clock()
            guard let entry = try await bucket.latest(network.storageKey), entry.operation == .put,
                var ban = try? Rampart_V1_Ban(serializedBytes: entry.value)
            else {
                throw RampartError(.notFound, "\(network) is not banned", details: ["field": "network"])
            }
            var reply = Rampart_V1_UnbanReply()
            guard ban.untilMs > now else {
                reply.ban = ban
                return reply
            }
            ban.untilMs = now
            ban.liftedBy = principal.description
            do {
                try await write(ban, network: network, expectedRevision: entry.revision)
                logger.notice("ban lifted", metadata: ["network": "\(ban.network)", "by": "\(principal)"])
                await record(.networkUnbanned, ban, actor: Rampart_V1_AuditActor(principal: principal), context: context)
                reply.lifted = true
                reply.ban = ban
                return reply
            } catch let error as NATSError where error.kind == .wrongLastRevision {
                continue
            }
        }
        throw RampartError(.unavailable, "the ban list is too contended, retry")
    }

    private func write(_ ban: Rampart_V1_Ban, network: IPNetwork, expectedRevision: UInt64) async throws {
        let value: [UInt8] = try ban.serializedBytes()
        let revision =
            expectedRevision == 0
            ? try await bucket.create(network.storageKey, value)
            : try await bucket.update(network.storageKey, value, expectedRevision: expectedRevision)
        // Enforced here at once, without waiting for the watch to bring the write back.
        list.apply(KeyValueEntry(bucket: bucket.name, key: network.storageKey, value: value, revision: revision, operation: .put, created: 0))
    }

    /// Audits a ban or unban. The change is already in force: if the audit log stays unreachable
    /// after the publisher's retries, that is logged as an error rather than undoing it.
    private func record(_ action: AuditAction, _ ban: Rampart_V1_Ban, actor: Rampart_V1_AuditActor, context: CallContext?) async {
        var event = Rampart_V1_AuditEvent()
        event.occurredAtMs = clock()
        event.action = action.rawValue
        event.actor = actor
        event.target.type = "network"
        event.target.id = ban.network
        event.outcome = .success
        event.reason = action == .networkBanned ? ban.reason : "lifted by \(actor.id)"
        event.details = ["offences": String(ban.offences), "until_ms": String(ban.untilMs)]
        if let context {
            event.requestID = context.requestID
            event.origin.ip = context.clientIP ?? ""
            event.origin.userAgent = context.userAgent ?? ""
        }
        await audit.record(event)
    }

    /// The record, if its offences are still remembered.
    private func remembered(_ ban: Rampart_V1_Ban?, now: Int64) -> Rampart_V1_Ban? {
        guard let ban, now - ban.bannedAtMs < settings.fail2ban.memorySeconds * 1000 else { return nil }
        return ban
    }
}

extension Rampart_V1_FailureKind {
    var label: String {
        switch self {
        case .login: "login"
        case .mfa: "MFA"
        case .apiKey: "API key"
        case .password: "password"
        default: "unspecified"
        }
    }
}
