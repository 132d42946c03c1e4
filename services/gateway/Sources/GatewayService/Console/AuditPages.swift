// Dates of the filter.
import Foundation
import HTTPTypes
import Hummingbird
import RampartModels
import ServiceKit

/// Audit log (AUD-3, AUD-5), for who has `audit.read`: the events, newest first, filtered by
/// actor, action, outcome, address and dates, page by page; the same filter exported as CSV or
/// JSON lines; the chain verified, with its result. The filter travels in the page's query:
/// it holds nothing secret, and a filtered page can be bookmarked.
struct AuditPages {
    let console: ConsoleRoutes

    static let path = "/console/audit"

    func add(to router: Router<GatewayRequestContext>) {
        let audit = router.group("/console/audit")
        audit.get { request, context in
            try await console.signedInPage(request, context) { call in
                let filter = Filter(request.uri.queryParameters)
                var values: [String: Any] = [:]
                var page = Rampart_V1_AuditQueryReply()
                do {
                    var query = filter.query
                    if let cursor = request.uri.queryParameters.get("cursor"), !cursor.isEmpty { query += "&cursor=\(ConsoleForm.encode(cursor))" }
                    page = try await call.get(
                        "/v1/tenants/\(call.caller.tenant.hex)/audit-events?page_size=25\(query)",
                        as: Rampart_V1_AuditQueryReply.self
                    )
                } catch let refusal as ConsoleRefusal where refusal.status == .badRequest {
                    values = refusal.shown(["ip", "from_ms", "to_ms", "action", "actor_id", "cursor"])
                }
                return try await overview(call, filter: filter, page: page, values)
            }
        }
        audit.get("export") { request, context in
            try await console.signedInPage(request, context, returnTo: Self.path) { call in
                let format = request.uri.queryParameters.get("format") == "csv" ? "csv" : "json"
                let filter = Filter(request.uri.queryParameters)
                return try await call.api.download(
                    "/v1/tenants/\(call.caller.tenant.hex)/audit-events/export?format=\(format)\(filter.query)",
                    accessToken: call.session.accessToken,
                    request: request,
                    context: context
                )
            }
        }
        audit.post("verify") { request, context in
            _ = try await console.checkedForm(request, context)
            return try await console.signedInPage(request, context, returnTo: Self.path) { call in
                let result = try await call.get("/v1/tenants/\(call.caller.tenant.hex)/audit-events/verify", as: Rampart_V1_AuditVerifyReply.self)
                let said =
                    result.valid
                    ? "The chain holds: all \(result.verifiedEvents) events are as they were written."
                    : "The chain is broken at event \(result.firstBadPosition): \(result.problem). The \(result.verifiedEvents) events before it hold."
                return try await overview(call, filter: Filter(), page: nil, [result.valid ? "verified" : "broken": said])
            }
        }
    }

    /// The filter, as the form sends it and the API takes it.
    struct Filter {
        var actor = ""
        var action = ""
        var outcome = ""
        var ip = ""
        var from = ""
        var to = ""

        init(_ query: Parameters) {
            actor = query.get("actor").map { String($0) } ?? ""
            action = query.get("action").map { String($0) } ?? ""
            outcome = ["success", "failure"].contains(query.get("outcome") ?? "") ? String(query.get("outcome") ?? "") : ""
            ip = query.get("ip").map { String($0) } ?? ""
            from = Self.day(query.get("from")) == nil ? "" : String(query.get("from") ?? "")
            to = Self.day(query.get("to")) == nil ? "" : String(query.get("to") ?? "")
        }

        /// No filter.
        init() {}

        /// `&name=value` for each part given, as the API's query names them; the dates as a
        /// range in milliseconds, the last day included.
        var query: String {
            var parts: [(String, String)] = []
            if !actor.isEmpty { parts.append(("actor_id", actor)) }
            if !action.isEmpty { parts.append(("action", action)) }
            if !outcome.isEmpty { parts.append(("outcome", outcome)) }
            if !ip.isEmpty { parts.append(("ip", ip)) }
            if let start = Self.day(from) { parts.append(("from_ms", String(start))) }
            if let start = Self.day(to) { parts.append(("to_ms", String(start + 86_400_000))) }
            return parts.map { "&\($0.0)=\(ConsoleForm.encode($0.1))" }.joined()
        }

        /// The start of a day (`2026-12-05`, UTC), in milliseconds.
        static func day(_ text: String?) -> Int64? {
            guard let text, text.utf8.count == 10 else { return nil }
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.dateFormat = "yyyy-MM-dd"
            return formatter.date(from: text).map { Int64($0.timeIntervalSince1970 * 1000) }
        }

        /// The page's own query, for the next page and the exports.
        var pageQuery: String {
            [("actor", actor), ("action", action), ("outcome", outcome), ("ip", ip), ("from", from), ("to", to)]
                .filter { !$0.1.isEmpty }.map { "\($0.0)=\(ConsoleForm.encode($0.1))" }.joined(separator: "&")
        }
    }

    private func overview(_ call: ConsoleCall, filter: Filter, page: Rampart_V1_AuditQueryReply?, _ values: [String: Any]) async throws -> Response {
        // The actor filter names people, not IDs: the members, by address.
        let members = try await call.get("/v1/tenants/\(call.caller.tenant.hex)/members", as: Rampart_V1_ListMembersReply.self).members
        let names = Dictionary(members.map { ($0.userID, $0.email) }) { first, _ in first }
        let records = page?.records ?? []
        var object: [String: Any] = [
            "filter": [
                "ip": filter.ip, "from": filter.from, "to": filter.to,
                "success": filter.outcome == "success", "failure": filter.outcome == "failure",
            ],
            "actors": members.map { ["id": $0.userID, "email": $0.email, "selected": $0.userID == filter.actor] },
            "actions": AuditAction.allCases.map { ["name": $0.rawValue, "selected": $0.rawValue == filter.action] },
            "events": records.map { record -> [String: Any] in
                let event = record.event
                let actor =
                    names[event.actor.id]
                    ?? (event.actor.email.isEmpty ? (event.actor.name.isEmpty ? event.actor.id : event.actor.name) : event.actor.email)
                // A member the event is about, by address.
                let target = event.target.type == "user" ? names[event.target.id].map { "user \($0)" } : nil
                return [
                    "time": SecurityPages.time(event.occurredAtMs),
                    "actor": actor.isEmpty ? "—" : actor,
                    "action": event.action,
                    "target": target ?? (event.target.type.isEmpty ? "" : "\(event.target.type) \(event.target.id)"),
                    "failed": event.outcome == .failure,
                    "ip": event.origin.ip,
                    "reason": event.reason,
                ]
            },
            "shown": page != nil,
            "hasEvents": !records.isEmpty,
            "next": (page?.nextCursor ?? "").isEmpty ? "" : "\(Self.path)?\(filter.pageQuery)&cursor=\(ConsoleForm.encode(page?.nextCursor ?? ""))",
            "exportQuery": filter.pageQuery,
        ]
        object.merge(values) { _, new in new }
        return try await console.page("audit", call, object)
    }
}
