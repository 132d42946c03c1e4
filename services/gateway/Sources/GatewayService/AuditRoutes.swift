import HTTPTypes
import Hummingbird
import NIOCore
import RampartModels
import RateLimitKit
import ServiceKit

extension APICaller {
    /// SPEC section 14, the tenant's audit trail (AUD-3, AUD-5): a filtered, paged query, an
    /// export streamed chunk by chunk, and the chain's verification, for those with `audit.read`.
    func addAuditRoutes(to router: Router<GatewayRequestContext>) {
        router.get("/v1/tenants/:tenant_id/audit-events") { request, context in
            await tenantRoute(request, context, accepts: .accessTokenOrAPIKey, requires: "audit.read") { _, call in
                let query = try QueryParameters(request, allowed: Self.filterParameters.union(["cursor", "page_size"]))
                var message = Rampart_V1_AuditQueryRequest()
                message.filter = try auditFilter(query)
                message.cursor = try query.text("cursor", maximumBytes: 512) ?? ""
                message.pageSize = Int32(try query.integer("page_size", in: 1...500) ?? 50)
                let reply = try await rpc.call(Subjects.Audit.query, message, context: call)
                return try json(reply)
            }
        }
        router.get("/v1/tenants/:tenant_id/audit-events/export") { request, context in
            await tenantRoute(request, context, accepts: .accessTokenOrAPIKey, requires: "audit.read") { _, call in
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
                    throw Problem(.badRequest, .invalidArgument, "format must be json or csv").field("format")
                }
                message.filter = try auditFilter(query)
                // The first chunk before the answer: a refusal is still a problem+json.
                let first = try await rpc.call(Subjects.Audit.export, message, context: call)
                let extension_ = message.format == .csv ? "csv" : "jsonl"
                return Response(
                    status: .ok,
                    headers: [.contentType: contentType, .contentDisposition: "attachment; filename=\"audit-events.\(extension_)\""],
                    body: ResponseBody { [rpc, message, callTimeout] writer in
                        var message = message
                        var reply = first
                        while true {
                            if !reply.chunk.isEmpty { try await writer.write(ByteBuffer(bytes: reply.chunk)) }
                            guard !reply.nextCursor.isEmpty else { break }
                            message.cursor = reply.nextCursor
                            // Each chunk has the call timeout of its own: an export may take
                            // longer than one call. A failure here cuts the body short: an
                            // export's trailer is then missing, which its verifier reports.
                            var chunkCall = call
                            chunkCall.deadline = WallClock.milliseconds() + Int64(callTimeout.components.seconds) * 1000
                            reply = try await rpc.call(Subjects.Audit.export, message, context: chunkCall)
                        }
                        try await writer.finish(nil)
                    }
                )
            }
        }
        router.get("/v1/tenants/:tenant_id/audit-events/verify") { request, context in
            await tenantRoute(request, context, accepts: .accessTokenOrAPIKey, requires: "audit.read") { _, call in
                _ = try QueryParameters(request, allowed: [])
                let reply = try await rpc.call(Subjects.Audit.verify, Rampart_V1_AuditVerifyRequest(), context: call)
                return try json(reply)
            }
        }
    }

    static let filterParameters: Set<String> = ["actor_id", "action", "target_type", "target_id", "outcome", "ip", "from_ms", "to_ms"]

    /// AuditFilter from the query; audit validates the values themselves.
    private func auditFilter(_ query: QueryParameters) throws -> Rampart_V1_AuditFilter {
        var filter = Rampart_V1_AuditFilter()
        filter.actorID = try query.text("actor_id", maximumBytes: 256) ?? ""
        filter.action = try query.text("action", maximumBytes: 64) ?? ""
        filter.targetType = try query.text("target_type", maximumBytes: 64) ?? ""
        filter.targetID = try query.text("target_id", maximumBytes: 256) ?? ""
        switch try query.text("outcome", maximumBytes: 16) {
        case nil: break
        case "success": filter.outcome = .success
        case "failure": filter.outcome = .failure
        default: throw Problem(.badRequest, .invalidArgument, "outcome must be success or failure").field("outcome")
        }
        if let ip = try query.text("ip", maximumBytes: 64) {
            guard let address = IPNetwork(address: ip) else { throw Problem(.badRequest, .invalidArgument, "ip must be an IP address").field("ip") }
            filter.ip = address.address
        }
        filter.fromMs = try query.integer("from_ms", in: 0...Int64.max) ?? 0
        filter.toMs = try query.integer("to_ms", in: 0...Int64.max) ?? 0
        return filter
    }
}

/// A route's query string, strictly: only the parameters it documents, each at most once.
struct QueryParameters {
    private var values: [String: String] = [:]

    init(_ request: Request, allowed: Set<String>) throws {
        for (name, value) in request.uri.queryParameters {
            let name = String(name)
            guard allowed.contains(name) else {
                throw Problem(.badRequest, .invalidArgument, "unknown query parameter \(name.prefix(64).debugDescription)").field(
                    String(name.prefix(64))
                )
            }
            guard values[name] == nil else { throw Problem(.badRequest, .invalidArgument, "\(name) is given twice").field(name) }
            values[name] = String(value)
        }
    }

    /// A text value, refused when longer than `maximumBytes` or holding a control character.
    func text(_ name: String, maximumBytes: Int) throws -> String? {
        guard let value = values[name] else { return nil }
        guard value.utf8.count <= maximumBytes, !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw Problem(.badRequest, .invalidArgument, "\(name) must be at most \(maximumBytes) bytes of text").field(name)
        }
        return value
    }

    func integer<Value: FixedWidthInteger>(_ name: String, in range: ClosedRange<Value>) throws -> Value? {
        guard let text = values[name] else { return nil }
        guard let value = Value(text), range.contains(value) else {
            throw Problem(.badRequest, .invalidArgument, "\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)").field(name)
        }
        return value
    }
}
