import ServicesTestSupport
import Testing

@testable import WebhooksService

@Suite("WH-2's retry schedule: the wait, up to 10% jitter, a Retry-After floor, then dead")
struct RetryScheduleTests {
    @Test("each failed attempt waits its step plus at most a tenth; after the last, none")
    func schedule() {
        let schedule = [5, 300, 1800]
        for attempts in 1...3 {
            for _ in 0..<200 {
                let next = RetrySchedule.nextAttempt(after: attempts, now: 1_000, schedule: schedule, retryAfterSeconds: nil)
                let wait = Int64(schedule[attempts - 1]) * 1000
                #expect(next.map { (1_000 + wait)...(1_000 + wait + wait / 10) ~= $0 } == true)
            }
        }
        #expect(RetrySchedule.nextAttempt(after: 4, now: 1_000, schedule: schedule, retryAfterSeconds: nil) == nil)
        #expect(RetrySchedule.nextAttempt(after: 0, now: 1_000, schedule: schedule, retryAfterSeconds: nil) == nil)
    }

    @Test("a Retry-After longer than the step is honoured, up to a day; a shorter one changes nothing")
    func retryAfter() {
        #expect(RetrySchedule.nextAttempt(after: 1, now: 0, schedule: [5], retryAfterSeconds: 60) == 60_000)
        #expect(RetrySchedule.nextAttempt(after: 1, now: 0, schedule: [5], retryAfterSeconds: 10_000_000) == 86_400_000)
        let next = RetrySchedule.nextAttempt(after: 1, now: 0, schedule: [300], retryAfterSeconds: 1)
        #expect(next.map { (300_000...330_000) ~= $0 } == true)
    }
}
