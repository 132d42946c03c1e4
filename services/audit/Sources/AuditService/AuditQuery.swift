import Logging
import NIOCore
import PostgresNIO
import RampartModels
import ServiceKit
import SodiumKit
import SwiftProtobuf

/// A validated `AuditFilter`, as SQL conditions on the query columns (AUD-3, IR-2).
struct AuditQueryFilter: Sendable {
    private(set) var conditions: [String] = []
    private(set) var binds = PostgresBindings()
    let isEmpty: Bool

    static let maxFieldLength = 256

    init(_ filter: Rampart_V1_AuditFilter) throws {
        isEmpty = filter == Rampart_V1_AuditFilter()
        for (field, value, column) in [
            ("actor_id", filter.actorID, "actor_id"), ("target_type", filter.targetType, "target_type"),
            ("target_id", filter.targetID, "target_id"),
        ] where !value.isEmpty {
            try Self.checkText(value, field: field)
            add("\(column) = $\(binds.count + 1)", value)
        }
        if !filter.action.isEmpty {
            guard AuditAction(rawValue: filter.action) != nil else {
                throw RampartError(.invalidArgument, "action must be one of proto/AUDIT_ACTIONS.md", details: ["field": "filter.action"])
            }
            add("action = $\(binds.count + 1)", filter.action)
        }
        switch filter.outcome {
        case .unspecified: break
        case .success, .failure: add("outcome = $\(binds.count + 1)", filter.outcome.storedName)
        case .UNRECOGNIZED:
            throw RampartError(.invalidArgument, "outcome must be success or failure", details: ["field": "filter.outcome"])
        }
        if !filter.ip.isEmpty {
            // Stored as the gateway wrote it; anything but an address can only be a mistake.
            guard filter.ip.utf8.count <= 45, filter.ip.utf8.allSatisfy({ $0.isHexDigit || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: ":") })
            else {
                throw RampartError(.invalidArgument, "ip must be an IPv4 or IPv6 address", details: ["field": "filter.ip"])
            }
            add("ip = $\(binds.count + 1)", filter.ip.lowercased())
        }
        guard filter.fromMs >= 0, filter.toMs >= 0 else {
            throw RampartError(.invalidArgument, "from_ms and to_ms are Unix milliseconds", details: ["field": "filter.from_ms"])
        }
        if filter.fromMs > 0 { add("occurred_at >= $\(binds.count + 1)", filter.fromMs) }
        if filter.toMs > 0 {
            guard filter.toMs > filter.fromMs else {
                throw RampartError(.invalidArgument, "to_ms must be after from_ms", details: ["field": "filter.to_ms"])
            }
            add("occurred_at < $\(binds.count + 1)", filter.toMs)
        }
    }

    /// Adds a condition whose placeholder is the next bind.
    mutating func add(_ condition: String, _ value: some PostgresNonThrowingEncodable) {
        conditions.append(condition)
        binds.append(value)
    }

    /// Events older than a page's last one: a row comparison that the (…, occurred_at DESC,
    /// position DESC) indexes serve directly.
    mutating func before(occurredAt: Int64, position: Int64) {
        conditions.append("(occurred_at, position) < ($\(binds.count + 1), $\(binds.count + 2))")
        binds.append(occurredAt)
        binds.append(position)
    }

    /// Positions in (after, upTo]: an export's next chunk.
    mutating func positions(after: Int64, upTo: Int64) {
        conditions.append("position > $\(binds.count + 1) AND position <= $\(binds.count + 2)")
        binds.append(after)
        binds.append(upTo)
    }

    var whereClause: String { conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ") }

    /// `select` (which names the table), this filter's WHERE clause, then `rest`, as one query.
    /// The one place audit builds SQL from parts: each condition is fixed text here with its
    /// value as a bind, and the parts are constants and a chain's schema.
    func query(_ select: String, _ rest: String) -> PostgresQuery {
        PostgresQuery(unsafeSQL: "\(select) \(whereClause) \(rest)", binds: binds)
    }

    private static func checkText(_ value: String, field: String) throws {
        guard value.utf8.count <= maxFieldLength, !value.utf8.contains(0) else {
            throw RampartError(
                .invalidArgument,
                "\(field) must be at most \(maxFieldLength) bytes, without NUL",
                details: ["field": "filter.\(field)"]
            )
        }
    }
}

extension UInt8 {
    fileprivate var isHexDigit: Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(self)
    }
}

/// Opaque page cursors: base64url of a few numbers, checked on the way back in. They only
/// narrow a query inside the caller's own tenant, so they need no signature.
enum AuditCursor {
    static func encode(_ tag: String, _ values: [Int64]) -> String {
        Base64.encode(Array(([tag] + values.map(String.init)).joined(separator: ":").utf8), variant: base64URL)
    }

    static func decode(_ cursor: String, _ tag: String, count: Int) throws -> [Int64] {
        guard cursor.utf8.count <= 128, let bytes = Base64.decode(cursor, variant: base64URL) else { throw invalid }
        let parts = String(decoding: bytes, as: UTF8.self).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == count + 1, parts[0] == tag else { throw invalid }
        let values = parts.dropFirst().compactMap { Int64($0) }
        guard values.count == count, values.allSatisfy({ $0 >= 0 }) else { throw invalid }
        return values
    }

    private static let base64URL = Base64.urlSafeNoPadding
    private static var invalid: RampartError {
        RampartError(.invalidArgument, "cursor is not one this service returned", details: ["field": "cursor"])
    }
}

extension AuditStore {
    static let defaultPageSize = 50
    static let maxPageSize = 500

    /// One page of `chain`'s events matching `request.filter`, newest first.
    func query(_ chain: Chain, _ request: Rampart_V1_AuditQueryRequest) async throws -> Rampart_V1_AuditQueryReply {
        guard (0...Int32(Self.maxPageSize)).contains(request.pageSize) else {
            throw RampartError(.invalidArgument, "page_size must be 1…\(Self.maxPageSize)", details: ["field": "page_size"])
        }
        let pageSize = request.pageSize == 0 ? Self.defaultPageSize : Int(request.pageSize)
        var filter = try AuditQueryFilter(request.filter)
        if !request.cursor.isEmpty {
            let after = try AuditCursor.decode(request.cursor, "q", count: 2)
            filter.before(occurredAt: after[0], position: after[1])
        }
        let rows = try await database.query(
            filter.query(
                "SELECT position, occurred_at, event FROM \(chain.schema).audit_events",
                "ORDER BY occurred_at DESC, position DESC LIMIT \(pageSize + 1)"
            )
        )
        var reply = Rampart_V1_AuditQueryReply()
        var last: (occurredAt: Int64, position: Int64)?
        for try await (position, occurredAt, event) in rows.decode((Int64, Int64, ByteBuffer).self) {
            guard reply.records.count < pageSize else {
                reply.nextCursor = AuditCursor.encode("q", [last!.occurredAt, last!.position])
                break
            }
            var record = Rampart_V1_AuditRecord()
            record.position = position
            record.event = try Rampart_V1_AuditEvent(serializedBytes: Array(buffer: event))
            reply.records.append(record)
            last = (occurredAt, position)
        }
        return reply
    }
}
