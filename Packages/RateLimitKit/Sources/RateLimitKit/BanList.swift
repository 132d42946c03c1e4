public import Logging
public import NATSKit
public import RampartModels
public import ServiceKit
public import ServiceLifecycle
import SwiftProtobuf
import Synchronization

/// Every ban, held in memory and kept current by watching the bans bucket: the rate-limit
/// replicas and the gateway each run one, so a ban written anywhere is enforced everywhere as
/// soon as the watch delivers it (milliseconds), and a lookup costs no round trip.
public final class BanList: Service, Sendable {
    private struct State {
        var bans: [IPNetwork: (ban: Rampart_V1_Ban, revision: UInt64)] = [:]
        /// The prefix lengths in use, per family: a lookup widens the address to each.
        var prefixLengths: (v4: Set<Int>, v6: Set<Int>) = ([], [])
    }

    private let connection: NATSConnection
    private let logger: Logger
    private let state = Mutex(State())
    private let caughtUp = OneTimeSignal()

    public init(connection: NATSConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// The ban in force on the network holding `address`, if any.
    public func ban(covering address: String, now: Int64 = WallClock.milliseconds()) -> Rampart_V1_Ban? {
        guard let address = IPNetwork(address: address) else { return nil }
        return ban(covering: address, now: now)
    }

    public func ban(covering address: IPNetwork, now: Int64 = WallClock.milliseconds()) -> Rampart_V1_Ban? {
        state.withLock { state in
            for prefix in address.isIPv4 ? state.prefixLengths.v4 : state.prefixLengths.v6 {
                if let ban = state.bans[address.widened(to: prefix)]?.ban, ban.untilMs > now { return ban }
            }
            return nil
        }
    }

    /// The record of `network` (in force or not), as last seen.
    public func record(of network: IPNetwork) -> Rampart_V1_Ban? {
        state.withLock { $0.bans[network]?.ban }
    }

    /// The records (in force or not) of the networks of `prefixLength` inside `network`.
    public func records(inside network: IPNetwork, prefixLength: Int) -> [Rampart_V1_Ban] {
        state.withLock { state in
            state.bans.compactMap { $0.key.prefixLength == prefixLength && network.contains($0.key) ? $0.value.ban : nil }
        }
    }

    /// Bans in force, soonest to end first.
    public func activeBans(now: Int64 = WallClock.milliseconds()) -> [Rampart_V1_Ban] {
        state.withLock { state in state.bans.values.map(\.ban).filter { $0.untilMs > now } }.sorted { $0.untilMs < $1.untilMs }
    }

    /// True once every ban stored when the watch started has been loaded.
    public var isCaughtUp: Bool { caughtUp.isSet }

    /// Returns once caught up, or when the task is cancelled.
    public func waitUntilCaughtUp() async {
        await caughtUp.wait()
    }

    /// Applies a bucket entry: from the watch, or a writer's own write (so it need not wait for
    /// the echo). An entry older than the one held is ignored: the echo of an earlier write may
    /// arrive after a later one was applied.
    public func apply(_ entry: KeyValueEntry) {
        guard entry.operation == .put else {
            state.withLock { state in
                if let (network, held) = state.bans.first(where: { $0.key.storageKey == entry.key }), held.revision < entry.revision {
                    state.bans[network] = nil
                }
            }
            return
        }
        guard let ban = try? Rampart_V1_Ban(serializedBytes: entry.value), let network = IPNetwork(cidr: ban.network),
            network.storageKey == entry.key
        else {
            logger.warning("ignoring an unreadable ban", metadata: ["key": "\(entry.key)"])
            return
        }
        state.withLock { state in
            if let held = state.bans[network], held.revision >= entry.revision { return }
            state.bans[network] = (ban, entry.revision)
            if network.isIPv4 { state.prefixLengths.v4.insert(network.prefixLength) } else { state.prefixLengths.v6.insert(network.prefixLength) }
        }
    }

    /// Watches the bans bucket until shutdown; a failed watch is reopened after a pause, and the
    /// bucket waited for when rate-limit has not created it yet.
    public func run() async throws {
        await repeatUntilShutdown("ban watch", logger: logger, isExpected: NATSError.isNotFound) {
            let bucket = try await self.connection.jetStream().keyValue(Subjects.RateLimit.bansBucket)
            for try await event in try await bucket.watch() {
                switch event {
                case .entry(let entry): self.apply(entry)
                case .caughtUp: self.markCaughtUp()
                }
            }
        }
    }

    private func markCaughtUp() {
        caughtUp.signal()
    }
}
