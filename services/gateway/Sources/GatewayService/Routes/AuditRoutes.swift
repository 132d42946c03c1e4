import HTTPTypes
import Hummingbird
import NIOCore
import RampartModels
import RateLimitKit
import ServiceKit

/// SPEC section 14, the tenant's audit trail (AUD-3, AUD-5): a filtered, paged query, an export
/// streamed chunk by chunk, and the chain's verification, for those with `audit.read`.
struct AuditRoutes {
    let calls: ServiceCalls

    static let filterParameters: Set<String> = ["actor_id", "action", "target_type", "target_id", "outcome", "ip", "from_ms", "to_ms"]

    func add(to scopes: RouteScopes) {
        let events = scopes.tenant("audit-events", accepts: .accessTokenOrAPIKey).requiring(scopes.permission("audit.read"))
        events.get { request, context in
            let query = try QueryParameters(request, allowed: Self.filterParameters.union(["cursor", "page_size"]))
            var message = Rampart_V1_AuditQueryRequest()
            message.filter = try Self.filter(query)
            message.cursor = try query.text("cursor", maximumBytes: 512) ?? ""
            message.pageSize = Int32(try query.integer("page_size", in: 1...500) ?? 50)
            return try Response.json(try await calls.call(Subjects.Audit.query, message, context))
        }
        events.get("export") { request, context in
            try await export(request, context)
        }
        events.get("verify") { request, context in
            _ = try QueryParameters(request, allowed: [])
            return try Response.json(try await calls.call(Subjects.Audit.verify, Rampart_V1_AuditVerifyRequest(), context))
        }
    }

    private func export(_ request: Request, _ context: CallerContext) async throws -> Response {
        let query = try QueryParameters(request, allowed: Self.filterParameters.union(["format"]))
        var message = Rampart_V1_AuditExportRequest()
        let contentType: String
        switch try query.text("format", maximumBytes: 8) ?? "json" {
        case "json":
            message.format = .jsonl
            contentType = "application/jsonl"
        case "csv":
            message.format = .csv
            contentType = "text/csv; charset=utf-8"
        default:
            throw RampartError.invalidArgument("format must be json or csv", field: "format")
        }
        message.filter = try Self.filter(query)
        // The first chunk before the answer: a refusal is still a problem+json.
        let first = try await calls.call(Subjects.Audit.export, message, context)
        let fileExtension = message.format == .csv ? "csv" : "jsonl"
        return Response(
            status: .ok,
            headers: [.contentType: contentType, .contentDisposition: "attachment; filename=\"audit-events.\(fileExtension)\""],
            body: ResponseBody { [calls, message, call = context.call] writer in
                var message = message
                var reply = first
                while true {
                    if !reply.chunk.isEmpty { try await writer.write(ByteBuffer(bytes: reply.chunk)) }
                    guard !reply.nextCursor.isEmpty else { break }
                    message.cursor = reply.nextCursor
                    // Each chunk has the call timeout of its own: an export may take longer than
                    // one call. A failure here cuts the body short: an export's trailer is then
                    // missing, which its verifier reports.
                    var chunkCall = call
                    chunkCall.deadline = WallClock.milliseconds() + Int64(calls.callTimeout.components.seconds) * 1000
                    reply = try await calls.rpc.call(Subjects.Audit.export, message, context: chunkCall)
                }
                try await writer.finish(nil)
            }
        )
    }

    /// AuditFilter from the query; audit validates the values themselves.
    private static func filter(_ query: QueryParameters) throws -> Rampart_V1_AuditFilter {
        var filter = Rampart_V1_AuditFilter()
        filter.actorID = try query.text("actor_id", maximumBytes: 256) ?? ""
        filter.action = try query.text("action", maximumBytes: 64) ?? ""
        filter.targetType = try query.text("target_type", maximumBytes: 64) ?? ""
        filter.targetID = try query.text("target_id", maximumBytes: 256) ?? ""
        switch try query.text("outcome", maximumBytes: 16) {
        case nil: break
        case "success": filter.outcome = .success
        case "failure": filter.outcome = .failure
        default: throw RampartError.invalidArgument("outcome must be success or failure", field: "outcome")
        }
        if let ip = try query.text("ip", maximumBytes: 64) {
            guard let address = IPNetwork(address: ip) else { throw RampartError.invalidArgument("ip must be an IP address", field: "ip") }
            filter.ip = address.address
        }
        filter.fromMs = try query.integer("from_ms", in: 0...Int64.max) ?? 0
        filter.toMs = try query.integer("to_ms", in: 0...Int64.max) ?? 0
        return filter
    }
}
