import HTTPTypes
import Hummingbird
import RampartModels

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// SPEC section 14, webhooks (WH-1, WH-4): endpoints, their deliveries, secret rotation,
/// redelivery and a test event, all with `webhooks.manage`; a new or changed target URL with a
/// verified email address (AUTH-11) too.
struct WebhookRoutes {
    let calls: ServiceCalls

    func add(to scopes: RouteScopes) {
        let endpoints = scopes.tenant("webhooks/endpoints").requiring(scopes.permission("webhooks.manage"))
        endpoints.get { request, context in
            _ = try QueryParameters(request, allowed: [])
            return try Response.json(try await calls.call(Subjects.Webhooks.listEndpoints, Rampart_V1_ListEndpointsRequest(), context))
        }
        endpoints.requiring(scopes.verifiedEmail("Creating a webhook endpoint")).post { request, context in
            try await calls.forward(Subjects.Webhooks.createEndpoint, request, context, status: .created)
        }
        endpoints.get(":endpoint_id") { _, context in
            var message = Rampart_V1_EndpointRequest()
            message.endpointID = try context.pathID("endpoint_id")
            return try Response.json(try await calls.call(Subjects.Webhooks.getEndpoint, message, context))
        }
        endpoints.requiring(scopes.verifiedEmail("Changing a webhook endpoint")).patch(":endpoint_id") { request, context in
            var message = try await calls.message(request, as: Rampart_V1_UpdateEndpointRequest.self)
            message.endpointID = try sameID(message.endpointID, as: try context.pathID("endpoint_id"), field: "endpoint_id", naming: "endpoint")
            return try Response.json(try await calls.call(Subjects.Webhooks.updateEndpoint, message, context))
        }
        endpoints.delete(":endpoint_id") { _, context in
            var message = Rampart_V1_EndpointRequest()
            message.endpointID = try context.pathID("endpoint_id")
            return try Response.json(try await calls.call(Subjects.Webhooks.deleteEndpoint, message, context))
        }
        endpoints.post(":endpoint_id/secret/rotate") { request, context in
            var message = try await calls.message(request, as: Rampart_V1_RotateSecretRequest.self)
            message.endpointID = try context.pathID("endpoint_id")
            return try Response.json(try await calls.call(Subjects.Webhooks.rotateSecret, message, context))
        }
        endpoints.post(":endpoint_id/test") { _, context in
            var message = Rampart_V1_TestEndpointRequest()
            message.endpointID = try context.pathID("endpoint_id")
            return try Response.json(try await calls.call(Subjects.Webhooks.testEndpoint, message, context), status: .accepted)
        }
        endpoints.get(":endpoint_id/deliveries") { request, context in
            let query = try QueryParameters(request, allowed: ["cursor", "page_size", "status"])
            var message = Rampart_V1_ListDeliveriesRequest()
            message.endpointID = try context.pathID("endpoint_id")
            message.cursor = try query.text("cursor", maximumBytes: 64) ?? ""
            message.pageSize = try query.integer("page_size", in: UInt32(1)...100) ?? 0
            switch try query.text("status", maximumBytes: 32) {
            case nil: break
            case "DELIVERY_STATUS_PENDING": message.status = .pending
            case "DELIVERY_STATUS_SUCCEEDED": message.status = .succeeded
            case "DELIVERY_STATUS_DEAD": message.status = .dead
            default: throw RampartError.invalidArgument("status must be DELIVERY_STATUS_PENDING, _SUCCEEDED or _DEAD", field: "status")
            }
            return try Response.json(try await calls.call(Subjects.Webhooks.listDeliveries, message, context))
        }
        endpoints.post(":endpoint_id/deliveries/:delivery_id/redeliver") { _, context in
            var message = Rampart_V1_RedeliverRequest()
            message.endpointID = try context.pathID("endpoint_id")
            message.deliveryID = try context.pathID("delivery_id")
            return try Response.json(try await calls.call(Subjects.Webhooks.redeliver, message, context), status: .accepted)
        }
    }
}

/// WH-5: a provider's event, passed on byte for byte with its signature for webhooks to check.
struct InboundRoutes {
    let calls: ServiceCalls

    func add(to router: Router<GatewayRequestContext>) {
        router.post("/v1/inbound/:provider") { request, context in
            var message = Rampart_V1_InboundRequest()
            message.provider = context.parameters.get("provider") ?? ""
            guard Subjects.InboundEvents.isProviderName(message.provider) else { throw RampartError(.notFound, "no such inbound provider") }
            guard let signature = request.headers[.stripeSignature] else {
                throw RampartError.invalidArgument("the Stripe-Signature header is required", field: "signature")
            }
            message.signature = signature
            message.body = Data(try await calls.jsonBody(request).readableBytesView)
            return try Response.json(try await calls.call(Subjects.Webhooks.receiveInbound, message, context))
        }
    }
}

extension HTTPField.Name {
    static let stripeSignature = Self("Stripe-Signature")!
}
