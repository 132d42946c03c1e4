import Dispatch

/// nats.c's JetStream management, fetch and key-value calls block their thread until the server
/// answers. They run here, never on Swift's cooperative pool (two threads on a two-core
/// machine): one blocked call there would stall every task of the process.
///
/// Each call gets a serial queue of its own: those run on GCD's overcommitting pool, which starts
/// a thread when every other one is blocked. A shared concurrent queue would not: it runs about
/// one thread per core, so two slow calls (a fetch waiting out its timeout) would hold up every
/// other blocking call of the process.
enum Blocking {
    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue(label: "natskit.blocking").async {
                continuation.resume(with: Result { try body() })
            }
        }
    }
}

/// A nats.c object pointer handed between threads. nats.c objects are thread-safe; ownership
/// (who destroys it, exactly once) stays with the Swift object that holds this.
struct CPointer: @unchecked Sendable {
    let raw: OpaquePointer
}
