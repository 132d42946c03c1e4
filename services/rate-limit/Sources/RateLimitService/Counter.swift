/// A quota: `limit` units per window.
struct Quota: Sendable, Equatable {
    var limit: UInt32
    var windowMilliseconds: Int64
}

/// The answer for one call, before it becomes a `RateLimitDecision`.
struct Verdict: Sendable, Equatable {
    var allowed: Bool
    var remaining: UInt32
    /// Until quota comes back: when the oldest counted call leaves the window.
    var resetMilliseconds: Int64
    var retryAfterMilliseconds: Int64
}

/// What is stored for one key under one policy, and the two ways of counting.
///
/// The sliding window keeps each admitted call's time: "at most `limit` in any `window`" holds
/// exactly (the 6th login within a minute is refused, and Retry-After says when the 1st leaves
/// the window). It is the default for the small limits that guard logins and sign-ups.
///
/// GCRA keeps one number, the theoretical arrival time: constant size for large limits (an API
/// key allowed 100,000 calls an hour), at the price of smoothing: it admits `limit` at once, then
/// one call every `window / limit`.
enum CounterState: Sendable, Equatable {
    struct Admission: Sendable, Equatable {
        /// Unix milliseconds.
        var at: Int64
        var cost: UInt32
    }

    /// Admissions within the window, oldest first.
    case slidingWindow([Admission])
    /// Theoretical arrival time in Unix milliseconds × `limit`: integer arithmetic stays exact
    /// whatever `window / limit` is.
    case gcra(scaledArrival: Int64, limit: UInt32)

    /// Whether this state was kept by `algorithm` (a policy whose algorithm was changed starts afresh).
    func counts(_ algorithm: RateLimitPolicy.Algorithm) -> Bool {
        switch (self, algorithm) {
        case (.slidingWindow, .slidingWindow), (.gcra, .gcra): true
        default: false
        }
    }

    /// Counts `cost` at `now` if the quota allows it.
    mutating func admit(cost: UInt32, quota: Quota, now: Int64) -> Verdict {
        switch self {
        case .slidingWindow(let admissions):
            var admissions = admissions
            let verdict = Self.admitSlidingWindow(&admissions, cost: cost, quota: quota, now: now)
            self = .slidingWindow(admissions)
            return verdict
        case .gcra(let scaledArrival, let limit):
            // A key's limit can change (an API key's is edited): carry the arrival time over.
            let arrival = limit == quota.limit ? scaledArrival : scaledArrival / Int64(max(limit, 1)) * Int64(quota.limit)
            var scaled = arrival
            let verdict = Self.admitGCRA(&scaled, cost: cost, quota: quota, now: now)
            self = .gcra(scaledArrival: scaled, limit: quota.limit)
            return verdict
        }
    }

    /// Gives back `cost` units admitted earlier, newest first (a call that turned out not to
    /// count: a sign-in whose password was right); never below nothing, never refused.
    mutating func refund(cost: UInt32, quota: Quota, now: Int64) -> Verdict {
        switch self {
        case .slidingWindow(var admissions):
            admissions.removeAll { $0.at <= now - quota.windowMilliseconds }
            var left = cost
            while left > 0, var newest = admissions.popLast() {
                let taken = min(left, newest.cost)
                newest.cost -= taken
                left -= taken
                if newest.cost > 0 { admissions.append(newest) }
            }
            self = .slidingWindow(admissions)
            let used = admissions.reduce(UInt64(0)) { $0 + UInt64($1.cost) }
            return Verdict(
                allowed: true,
                remaining: UInt32(UInt64(quota.limit) - min(used, UInt64(quota.limit))),
                resetMilliseconds: admissions.first.map { $0.at + quota.windowMilliseconds - now } ?? 0,
                retryAfterMilliseconds: 0
            )
        case .gcra(let scaledArrival, let limit):
            let scale = Int64(quota.limit)
            let arrival = limit == quota.limit ? scaledArrival : scaledArrival / Int64(max(limit, 1)) * scale
            let given = max(now * scale, arrival - quota.windowMilliseconds * Int64(cost))
            self = .gcra(scaledArrival: given, limit: quota.limit)
            return Verdict(
                allowed: true,
                remaining: UInt32((now * scale + quota.windowMilliseconds * scale - given) / quota.windowMilliseconds),
                resetMilliseconds: Self.divideRoundingUp(given - now * scale, scale),
                retryAfterMilliseconds: 0
            )
        }
    }

    private static func admitSlidingWindow(_ admissions: inout [Admission], cost: UInt32, quota: Quota, now: Int64) -> Verdict {
        admissions.removeAll { $0.at <= now - quota.windowMilliseconds }
        let used = admissions.reduce(UInt64(0)) { $0 + UInt64($1.cost) }
        let limit = UInt64(quota.limit)
        if used + UInt64(cost) <= limit {
            // Clocks of replicas differ a little: keep the list ordered by time anyway.
            let index = admissions.lastIndex { $0.at <= now }.map { $0 + 1 } ?? 0
            if index > 0, admissions[index - 1].at == now {
                admissions[index - 1].cost += cost
            } else {
                admissions.insert(Admission(at: now, cost: cost), at: index)
            }
            return Verdict(
                allowed: true,
                remaining: UInt32(limit - used - UInt64(cost)),
                resetMilliseconds: admissions[0].at + quota.windowMilliseconds - now,
                retryAfterMilliseconds: 0
            )
        }
        // Refused: wait until enough of the oldest admissions have left the window.
        var freed: UInt64 = 0
        var retryAfter = quota.windowMilliseconds
        for admission in admissions {
            freed += UInt64(admission.cost)
            if used - freed + UInt64(cost) <= limit {
                retryAfter = admission.at + quota.windowMilliseconds - now
                break
            }
        }
        return Verdict(
            allowed: false,
            remaining: UInt32(limit - min(used, limit)),
            resetMilliseconds: (admissions.first?.at ?? now) + quota.windowMilliseconds - now,
            retryAfterMilliseconds: max(1, retryAfter)
        )
    }

    private static func admitGCRA(_ scaledArrival: inout Int64, cost: UInt32, quota: Quota, now: Int64) -> Verdict {
        let limit = Int64(quota.limit)
        let window = quota.windowMilliseconds
        let scaledNow = now * limit
        let arrival = max(scaledArrival, scaledNow)
        let next = arrival + window * Int64(cost)
        // Everything here is in units of 1/limit ms; one unit of quota is `window` of them.
        if next - scaledNow <= window * limit {
            scaledArrival = next
            return Verdict(
                allowed: true,
                remaining: UInt32((scaledNow + window * limit - next) / window),
                resetMilliseconds: Self.divideRoundingUp(next - scaledNow, limit),
                retryAfterMilliseconds: 0
            )
        }
        return Verdict(
            allowed: false,
            remaining: UInt32(max(0, (scaledNow + window * limit - arrival) / window)),
            resetMilliseconds: Self.divideRoundingUp(arrival - scaledNow, limit),
            retryAfterMilliseconds: max(1, Self.divideRoundingUp(next - scaledNow - window * limit, limit))
        )
    }

    private static func divideRoundingUp(_ value: Int64, _ divisor: Int64) -> Int64 {
        (value + divisor - 1) / divisor
    }

    // MARK: Storage

    /// Little-endian: a kind byte, then for the sliding window a count and (time, cost) pairs,
    /// for GCRA the scaled arrival and the limit it was scaled by.
    var encoded: [UInt8] {
        var bytes: [UInt8] = []
        switch self {
        case .slidingWindow(let admissions):
            bytes.reserveCapacity(5 + admissions.count * 12)
            bytes.append(1)
            Self.append(UInt32(admissions.count), to: &bytes)
            for admission in admissions {
                Self.append(UInt64(bitPattern: admission.at), to: &bytes)
                Self.append(admission.cost, to: &bytes)
            }
        case .gcra(let scaledArrival, let limit):
            bytes.append(2)
            Self.append(UInt64(bitPattern: scaledArrival), to: &bytes)
            Self.append(limit, to: &bytes)
        }
        return bytes
    }

    /// Nil for bytes this version did not write: the counter then starts afresh rather than
    /// failing every call on the key.
    init?(decoding bytes: [UInt8]) {
        var reader = ByteReader(bytes: bytes)
        switch reader.byte() {
        case 1:
            guard let count = reader.uint32(), Int(count) * 12 == bytes.count - 5 else { return nil }
            var admissions: [Admission] = []
            admissions.reserveCapacity(Int(count))
            for _ in 0..<count {
                guard let at = reader.uint64(), let cost = reader.uint32() else { return nil }
                admissions.append(Admission(at: Int64(bitPattern: at), cost: cost))
            }
            self = .slidingWindow(admissions)
        case 2:
            guard let arrival = reader.uint64(), let limit = reader.uint32(), reader.isAtEnd else { return nil }
            self = .gcra(scaledArrival: Int64(bitPattern: arrival), limit: limit)
        default:
            return nil
        }
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}

private struct ByteReader {
    let bytes: [UInt8]
    var offset = 0

    var isAtEnd: Bool { offset == bytes.count }

    mutating func byte() -> UInt8? {
        guard offset < bytes.count else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func uint32() -> UInt32? { integer() }
    mutating func uint64() -> UInt64? { integer() }

    private mutating func integer<T: FixedWidthInteger>() -> T? {
        let size = MemoryLayout<T>.size
        guard offset + size <= bytes.count else { return nil }
        var value: T = 0
        for index in 0..<size { value |= T(bytes[offset + index]) << (8 * index) }
        offset += size
        return value
    }
}
