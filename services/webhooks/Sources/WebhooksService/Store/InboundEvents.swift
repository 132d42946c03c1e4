import Logging
import PostgresNIO
import ServiceKit

/// `inbound_events` (WH-5): the provider's event IDs already accepted, so a provider's retry
/// of one is answered as a duplicate and not published again.
struct InboundEvents: Sendable {
    let database: Database
    let logger: Logger

    /// Records `eventID` of `provider` and runs `accepted` in the same transaction, so that
    /// when `accepted` fails nothing is recorded and the provider's retry gets a fresh chance;
    /// false when the event was recorded before (a duplicate: `accepted` does not run).
    func recordOnce(
        _ eventID: String,
        from provider: String,
        at receivedAtMs: Int64,
        _ accepted: @escaping @Sendable () async throws -> Void
    ) async throws
        -> Bool
    {
        try await database.transaction { connection in
            let rows = try await connection.query(
                """
                INSERT INTO inbound_events (provider, event_id, received_at) VALUES (\(provider), \(eventID), to_timestamp(\(receivedAtMs) / 1000.0))
                ON CONFLICT (provider, event_id) DO NOTHING RETURNING event_id
                """,
                logger: logger
            )
            guard try await rows.first(decoding: String.self) != nil else { return false }
            try await accepted()
            return true
        }
    }

    /// Forgets the events received before `cutoffMs`.
    func prune(before cutoffMs: Int64) async throws {
        try await database.query("DELETE FROM inbound_events WHERE received_at < to_timestamp(\(cutoffMs) / 1000.0)")
    }
}
