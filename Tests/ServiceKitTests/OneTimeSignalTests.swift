import ServiceKit
import Testing

@Suite("OneTimeSignal: waiters wake on the signal, or on cancellation")
struct OneTimeSignalTests {
    @Test("every waiter wakes once signalled; a later waiter returns at once")
    func signal() async {
        let signal = OneTimeSignal()
        #expect(!signal.isSet)
        let waiters = (0..<5).map { _ in Task { await signal.wait() } }
        signal.signal()
        for waiter in waiters { await waiter.value }
        await signal.wait()
        #expect(signal.isSet)
    }

    @Test("a cancelled waiter stops waiting although nothing was signalled")
    func cancellation() async {
        let signal = OneTimeSignal()
        let waiter = Task { await signal.wait() }
        try? await Task.sleep(for: .milliseconds(20))
        waiter.cancel()
        await waiter.value
        #expect(!signal.isSet)
    }
}
