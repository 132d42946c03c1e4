/// WH-2's retries: when a failed attempt is tried again.
enum RetrySchedule {
    /// When attempt `attempts` (1-based, just failed) should be followed by another: the
    /// schedule's wait plus up to 10% jitter, no sooner than a Retry-After; nil after the last.
    static func nextAttempt(after attempts: Int, now: Int64, schedule: [Int], retryAfterSeconds: Int?) -> Int64? {
        guard attempts >= 1, attempts <= schedule.count else { return nil }
        let wait = Int64(schedule[attempts - 1]) * 1000
        var next = now + wait + Int64.random(in: 0...(wait / 10))
        if let retryAfterSeconds, retryAfterSeconds > 0 { next = max(next, now + Int64(min(retryAfterSeconds, 86_400)) * 1000) }
        return next
    }
}
