import Dispatch

/// nats.c's JetStream management, fetch and key-value calls block their thread until the server
/// answers. They run here, never on Swift's cooperative pool (two threads on a two-core
/// machine): one blocked call there would stall every task of the process.
enum Blocking {
    private static let queue = DispatchQueue(label: "natskit.blocking", attributes: .concurrent)

    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
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
