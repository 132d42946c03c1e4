import ServiceKit
import Testing

@Suite("WakeSignal: a polling loop waits its full poll unless woken, every time")
struct WakeSignalTests {
    @Test("a wait that times out leaves the next wait waiting its full time (a loop never spins)")
    func timeoutsRepeat() async {
        let wake = WakeSignal()
        let clock = ContinuousClock()
        for _ in 0..<3 {
            let started = clock.now
            await wake.wait(upTo: .milliseconds(50))
            #expect(clock.now - started >= .milliseconds(45))
        }
    }

    @Test("a signal wakes the waiter; one sent while nobody waits is kept for the next wait, once")
    func signals() async {
        let wake = WakeSignal()
        let clock = ContinuousClock()
        let waiter = Task {
            let started = clock.now
            await wake.wait(upTo: .seconds(30))
            return clock.now - started
        }
        try? await Task.sleep(for: .milliseconds(50))
        wake.signal()
        #expect(await waiter.value < .seconds(10))

        wake.signal()
        wake.signal()
        var started = clock.now
        await wake.wait(upTo: .seconds(30))
        #expect(clock.now - started < .seconds(10))
        started = clock.now
        await wake.wait(upTo: .milliseconds(50))
        #expect(clock.now - started >= .milliseconds(45))
    }

    @Test("a cancelled waiter stops waiting")
    func cancellation() async {
        let wake = WakeSignal()
        let waiter = Task { await wake.wait(upTo: .seconds(30)) }
        try? await Task.sleep(for: .milliseconds(20))
        waiter.cancel()
        await waiter.value
    }
}
