// UUID, trimming.
import Foundation
import HTTPTypes
import Hummingbird
import RampartModels
import ServiceKit

/// Webhooks (WH-1…4), for who has `webhooks.manage`: the endpoints, a new one with its event
/// types and its signing secret shown once; an endpoint's page with its delivery log,
/// redelivery, a test event, the secret's rotation (shown once, the old one signing beside it
/// for a grace period), turning it off and on, removal.
struct WebhookPages {
    let console: ConsoleRoutes

    static let path = "/console/webhooks"

    static let notices = [
        "removed": "The endpoint is removed; its pending deliveries are dropped.",
        "test": "A webhook.test event is on its way: it appears in the log below.",
        "redelivered": "The delivery is being sent again, with the same event ID.",
        "enabled": "The endpoint receives events again.",
        "disabled": "The endpoint receives no events until it is turned on again.",
    ]

    func add(to router: Router<GatewayRequestContext>) {
        let webhooks = router.group("/console/webhooks")
        webhooks.get { request, context in
            try await console.signedInPage(request, context) { call in try await overview(call) }
        }
        webhooks.post { request, context in
            let form = try await console.checkedForm(request, context)
            return try await console.signedInPage(request, context, returnTo: Self.path) { call in
                var message = Rampart_V1_CreateEndpointRequest()
                message.url = (form["url"] ?? "").trimmingCharacters(in: .whitespaces)
                message.description_p = form["description"] ?? ""
                message.eventTypes = Self.eventTypes(form["event_types"])
                do {
                    let created = try await call.send(.post, endpoints(call), message, as: Rampart_V1_CreateEndpointReply.self)
                    return try await console.page(
                        "webhook-secret",
                        call,
                        section: "webhooks",
                        ["secret": created.secret, "id": created.endpoint.endpointID, "url": created.endpoint.url]
                    )
                } catch let refusal as ConsoleRefusal where refusal.status != .unauthorized {
                    var values = refusal.shown(["url", "description", "event_types"])
                    values["typed"] = ["url": message.url, "description": message.description_p, "event_types": form["event_types"] ?? ""]
                    return try await overview(call, status: refusal.status, values)
                }
            }
        }
        webhooks.get("endpoint") { request, context in
            try await console.signedInPage(request, context) { call in
                guard let id = request.uri.queryParameters.get("id").flatMap({ UUID(uuidString: String($0)) }) else {
                    return try await overview(call, status: .badRequest, ["problem": "That is not one of the endpoints listed here."])
                }
                return try await endpointPage(call, id: id.uuidString.lowercased())
            }
        }
        endpointAction(webhooks, "test", done: "test") { call, _, id in
            _ = try await call.send(.post, endpoints(call) + "/\(id)/test", as: Rampart_V1_DeliveryReply.self)
            return nil
        }
        endpointAction(webhooks, "redeliver", done: "redelivered") { call, form, id in
            guard let delivery = form["delivery_id"].flatMap(UUID.init(uuidString:)) else {
                throw ConsoleRefusal(status: .badRequest, detail: "That is not one of the deliveries listed here.", errors: [:])
            }
            _ = try await call.send(
                .post,
                endpoints(call) + "/\(id)/deliveries/\(delivery.uuidString.lowercased())/redeliver",
                as: Rampart_V1_DeliveryReply.self
            )
            return nil
        }
        endpointAction(webhooks, "enable", done: "enabled") { call, _, id in
            try await switchEndpoint(call, id, on: true)
        }
        endpointAction(webhooks, "disable", done: "disabled") { call, _, id in
            try await switchEndpoint(call, id, on: false)
        }
        endpointAction(webhooks, "rotate", done: "") { call, form, id in
            var message = Rampart_V1_RotateSecretRequest()
            message.graceSeconds = UInt32(form["grace_seconds"] ?? "") ?? 86400
            let rotated = try await call.send(.post, endpoints(call) + "/\(id)/secret/rotate", message, as: Rampart_V1_CreateEndpointReply.self)
            let grace = APIKeyPages.graces.first { $0.seconds == message.graceSeconds }?.label ?? "24 hours"
            return try await console.page(
                "webhook-secret",
                call,
                section: "webhooks",
                ["secret": rotated.secret, "id": id, "url": rotated.endpoint.url, "rotated": true, "grace": grace]
            )
        }
        webhooks.post("remove") { request, context in
            let form = try await console.checkedForm(request, context)
            return try await console.signedInPage(request, context, returnTo: Self.path) { call in
                guard let id = form["endpoint_id"].flatMap(UUID.init(uuidString:)) else {
                    return try await overview(call, status: .badRequest, ["problem": "That is not one of the endpoints listed here."])
                }
                do {
                    _ = try await call.send(.delete, endpoints(call) + "/\(id.uuidString.lowercased())", as: Rampart_V1_EndpointReply.self)
                    return ConsoleRoutes.seeOther(Self.path + "?done=removed")
                } catch let refusal as ConsoleRefusal where refusal.status != .unauthorized {
                    return try await overview(call, status: refusal.status, ["problem": refusal.detail])
                }
            }
        }
    }

    /// A form about one endpoint (`endpoint_id`): `change` answers a page of its own, or nil to
    /// go back to the endpoint's page saying `done`.
    private func endpointAction(
        _ group: RouterGroup<GatewayRequestContext>,
        _ path: String,
        done: String,
        _ change: @escaping @Sendable (ConsoleCall, ConsoleForm.Fields, String) async throws -> Response?
    ) {
        group.post(RouterPath(path)) { request, context in
            let form = try await console.checkedForm(request, context)
            return try await console.signedInPage(request, context, returnTo: Self.path) { call in
                guard let id = form["endpoint_id"].flatMap(UUID.init(uuidString:))?.uuidString.lowercased() else {
                    return try await overview(call, status: .badRequest, ["problem": "That is not one of the endpoints listed here."])
                }
                do {
                    return try await change(call, form, id) ?? ConsoleRoutes.seeOther("\(Self.path)/endpoint?id=\(id)&done=\(done)")
                } catch let refusal as ConsoleRefusal where refusal.status != .unauthorized {
                    return try await endpointPage(call, id: id, status: refusal.status, ["problem": refusal.detail])
                }
            }
        }
    }

    private func switchEndpoint(_ call: ConsoleCall, _ id: String, on: Bool) async throws -> Response? {
        var message = Rampart_V1_UpdateEndpointRequest()
        message.endpointID = id
        message.enabled = on
        _ = try await call.send(.patch, endpoints(call) + "/\(id)", message, as: Rampart_V1_EndpointReply.self)
        return nil
    }

    private func endpoints(_ call: ConsoleCall) -> String {
        "/v1/tenants/\(call.caller.tenant.hex)/webhooks/endpoints"
    }

    /// Event types as typed: separated by commas, spaces or lines; none is every event.
    static func eventTypes(_ text: String?) -> [String] {
        let types = (text ?? "").split(whereSeparator: { $0.isNewline || $0 == "," || $0 == " " }).map(String.init)
        return types.isEmpty ? ["*"] : types
    }

    private func overview(_ call: ConsoleCall, status: HTTPResponse.Status = .ok, _ values: [String: Any] = [:]) async throws -> Response {
        let list = try await call.get(endpoints(call), as: Rampart_V1_ListEndpointsReply.self)
        var object: [String: Any] = [
            "endpoints": list.endpoints.map { endpoint -> [String: Any] in
                [
                    "id": endpoint.endpointID,
                    "url": endpoint.url,
                    "description": endpoint.description_p,
                    "types": endpoint.eventTypes.joined(separator: ", "),
                    "state": Self.state(endpoint),
                ]
            },
            "hasEndpoints": !list.endpoints.isEmpty,
        ]
        object["notice"] = call.notice(Self.notices)
        object.merge(values) { _, new in new }
        return try await console.page("webhooks", call, status: status, object)
    }

    private func endpointPage(
        _ call: ConsoleCall,
        id: String,
        status: HTTPResponse.Status = .ok,
        _ values: [String: Any] = [:]
    ) async throws -> Response {
        async let endpoint = call.get(endpoints(call) + "/\(id)", as: Rampart_V1_EndpointReply.self)
        async let deliveries = call.get(endpoints(call) + "/\(id)/deliveries?page_size=50", as: Rampart_V1_ListDeliveriesReply.self)
        let (found, log) = try await (endpoint.endpoint, deliveries)
        var object: [String: Any] = [
            "id": found.endpointID,
            "url": found.url,
            "description": found.description_p,
            "types": found.eventTypes.joined(separator: ", "),
            "state": Self.state(found),
            "enabled": found.enabled,
            "previousSecretUntil": found.previousSecretExpiresAtMs > WallClock.milliseconds()
                ? SecurityPages.time(found.previousSecretExpiresAtMs) : "",
            "graces": APIKeyPages.graces.map { ["seconds": Int($0.seconds), "label": $0.label, "selected": $0.seconds == 86400] },
            "deliveries": log.deliveries.map { delivery -> [String: Any] in
                [
                    "deliveryID": delivery.deliveryID,
                    "type": delivery.eventType,
                    "status": Self.status(delivery.status),
                    "attempts": Int(delivery.attempts),
                    "answer": delivery.responseStatus == 0 ? "none" : String(delivery.responseStatus),
                    "error": delivery.lastError,
                    "time": SecurityPages.time(delivery.createdAtMs),
                ]
            },
            "hasDeliveries": !log.deliveries.isEmpty,
        ]
        object["notice"] = call.notice(Self.notices)
        object.merge(values) { _, new in new }
        return try await console.page("webhook", call, section: "webhooks", status: status, object)
    }

    static func state(_ endpoint: Rampart_V1_WebhookEndpoint) -> String {
        if endpoint.enabled { return endpoint.failingSinceMs > 0 ? "On, failing since \(SecurityPages.time(endpoint.failingSinceMs))" : "On" }
        switch endpoint.disabledReason {
        case "gone": return "Off: the receiver answered that it is gone (410)"
        case "failing": return "Off: every delivery failed for days"
        default: return "Off"
        }
    }

    static func status(_ status: Rampart_V1_DeliveryStatus) -> String {
        switch status {
        case .pending: "Pending"
        case .succeeded: "Delivered"
        case .dead: "Failed for good"
        default: "Unknown"
        }
    }
}
