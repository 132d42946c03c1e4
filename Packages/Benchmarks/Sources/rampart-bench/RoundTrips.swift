import Foundation
import Logging
import NATSKit
import Synchronization
import TestSupport

/// The NATS round trips one operation makes: every request on a `rampart.` subject (a service's
/// RPC or a JetStream publish) that another connection sent while `body` ran, paired with its
/// reply, as a wiretap on the bench's server (which has no authorization) sees them.
struct RoundTrips: CustomStringConvertible {
    struct Trip {
        var subject: String
        var start: ContinuousClock.Instant
        var end: ContinuousClock.Instant
    }
    var trips: [Trip]

    /// All of them.
    var total: Int { trips.count }

    /// How many happen one after another: the longest chain of trips each starting after the
    /// one before it ended (the others overlap one of them).
    var sequential: Int {
        var count = 0
        var lastEnd: ContinuousClock.Instant?
        for trip in trips.sorted(by: { $0.end < $1.end }) where lastEnd.map({ trip.start >= $0 }) ?? true {
            count += 1
            lastEnd = trip.end
        }
        return count
    }

    var description: String {
        let names = trips.sorted { $0.start < $1.start }.map { $0.subject.replacingOccurrences(of: "rampart.", with: "") }
        return "\(total) NATS round trips, \(sequential) one after another (\(names.joined(separator: ", ")))"
    }

    /// Runs `body` once under the wiretap; `excluding` names the subjects of the bench's own
    /// calls (the operation being counted, when the bench asks for it over NATS).
    static func count(server url: String, excluding: Set<String> = [], logger: Logger, _ body: () async throws -> Void) async throws -> RoundTrips {
        let tap = try await NATSConnection.connect(NATSConfiguration(servers: [url], name: "bench-wiretap"), logger: logger)
        let subscription = try tap.subscribe(to: ">")
        try await tap.flush()
        let seen = Mutex<[(NATSMessage, ContinuousClock.Instant)]>([])
        let reader = Task {
            for await message in subscription { seen.withLock { $0.append((message, .now)) } }
        }
        try await body()
        // Whatever the operation left in flight (an acknowledgement) arrives within this.
        try await Task.sleep(for: .milliseconds(300))
        subscription.unsubscribe()
        _ = await reader.value
        await tap.drain()
        let messages = seen.withLock { $0 }
        var replies: [String: ContinuousClock.Instant] = [:]
        for (message, at) in messages where replies[message.subject] == nil { replies[message.subject] = at }
        let trips = messages.compactMap { message, at -> Trip? in
            // A consumer's delivery keeps the stream's subject and is acknowledged on $JS.ACK:
            // another service's work after the operation, not a round trip of it.
            guard message.subject.hasPrefix("rampart."), !excluding.contains(message.subject), let inbox = message.replySubject,
                !inbox.hasPrefix("$JS.ACK."), let end = replies[inbox]
            else { return nil }
            return Trip(subject: message.subject, start: at, end: end)
        }
        return RoundTrips(trips: trips)
    }
}
