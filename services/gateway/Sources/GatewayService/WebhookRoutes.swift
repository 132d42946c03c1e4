import HTTPTypes
import Hummingbird
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension APICaller {
    /// SPEC section 14, webhooks (WH-1, WH-4): endpoints, their deliveries, secret rotation,
    /// redelivery and a test event, all with `webhooks.manage`.
    func addWebhookRoutes(to router: Router<GatewayRequestContext>) {
        let endpoints = "/v1/tenants/:tenant_id/webhooks/endpoints"
        router.get(RouterPath(endpoints)) { request, context in
            await tenantRoute(request, context, requires: "webhooks.manage") { _, call in
                _ = try QueryParameters(request, allowed: [])
                let reply = try await rpc.call(
                    Subjects.Webhooks.listEndpoints,
                    Rampart_V1_ListEndpointsRequest(),
                    context: call
                )
                return try json(reply)
            }
        }
        router.post(RouterPath(endpoints)) { request, context in
            await tenantRoute(request, context, requires: "webhooks.manage", needsVerifiedEmail: "Creating a webhook endpoint") { _, call in
                let message = try await decode(request, as: Rampart_V1_CreateEndpointRequest.self)
                let reply = try await rpc.call(Subjects.Webhooks.createEndpoint, message, context: call)
                return try json(reply, status: .created)
            }
        }
        router.get(RouterPath("\(endpoints)/:endpoint_id")) { request, context in
            await tenantRoute(request, context, requires: "webhooks.manage") { _, call in
                var message = Rampart_V1_EndpointRequest()
                message.endpointID = try pathID(context, "endpoint_id")
                let reply = try await rpc.call(Subjects.Webhooks.getEndpoint, message, context: call)
                return try json(reply)
            }
        }
        router.patch(RouterPath("\(endpoints)/:endpoint_id")) { request, context in
            await tenantRoute(request, context, requires: "webhooks.manage", needsVerifiedEmail: "Changing a webhook endpoint") { _, call in
                var message = try await decode(request, as: Rampart_V1_UpdateEndpointRequest.self)
                let endpoint = try pathID(context, "endpoint_id")
                guard message.endpointID.isEmpty || message.endpointID.lowercased() == endpoint else {
                    throw Problem(.badRequest, .invalidArgument, "endpoint_id in the body names another endpoint than the path").field("endpoint_id")
                }
                message.endpointID = endpoint
                let reply = try await rpc.call(Subjects.Webhooks.updateEndpoint, message, context: call)
                return try json(reply)
            }
        }
        router.delete(RouterPath("\(endpoints)/:endpoint_id")) { request, context in
            await tenantRoute(request, context, requires: "webhooks.manage") { _, call in
                var message = Rampart_V1_EndpointRequest()
                message.endpointID = try pathID(context, "endpoint_id")
                let reply = try await rpc.call(Subjects.Webhooks.deleteEndpoint, message, context: call)
                return try json(reply)
            }
        }
        router.post(RouterPath("\(endpoints)/:endpoint_id/secret/rotate")) { request, context in
            await tenantRoute(request, context, requires: "webhooks.manage") { _, call in
                var message = try await decode(request, as: Rampart_V1_RotateSecretRequest.self)
                message.endpointID = try pathID(context, "endpoint_id")
                let reply = try await rpc.call(Subjects.Webhooks.rotateSecret, message, context: call)
                return try json(reply)
            }
        }
        router.post(RouterPath("\(endpoints)/:endpoint_id/test")) { request, context in
            await tenantRoute(request, context, requires: "webhooks.manage") { _, call in
                var message = Rampart_V1_TestEndpointRequest()
                message.endpointID = try pathID(context, "endpoint_id")
                let reply = try await rpc.call(Subjects.Webhooks.testEndpoint, message, context: call)
                return try json(reply, status: .accepted)
            }
        }
        router.get(RouterPath("\(endpoints)/:endpoint_id/deliveries")) { request, context in
            await tenantRoute(request, context, requires: "webhooks.manage") { _, call in
                let query = try QueryParameters(request, allowed: ["cursor", "page_size", "status"])
                var message = Rampart_V1_ListDeliveriesRequest()
                message.endpointID = try pathID(context, "endpoint_id")
                message.cursor = try query.text("cursor", maximumBytes: 64) ?? ""
                message.pageSize = try query.integer("page_size", in: UInt32(1)...100) ?? 0
                switch try query.text("status", maximumBytes: 32) {
                case nil: break
                case "DELIVERY_STATUS_PENDING": message.status = .pending
                case "DELIVERY_STATUS_SUCCEEDED": message.status = .succeeded
                case "DELIVERY_STATUS_DEAD": message.status = .dead
                default:
                    throw Problem(.badRequest, .invalidArgument, "status must be DELIVERY_STATUS_PENDING, _SUCCEEDED or _DEAD").field("status")
                }
                let reply = try await rpc.call(Subjects.Webhooks.listDeliveries, message, context: call)
                return try json(reply)
            }
        }
        router.post(RouterPath("\(endpoints)/:endpoint_id/deliveries/:delivery_id/redeliver")) { request, context in
            await tenantRoute(request, context, requires: "webhooks.manage") { _, call in
                var message = Rampart_V1_RedeliverRequest()
                message.endpointID = try pathID(context, "endpoint_id")
                message.deliveryID = try pathID(context, "delivery_id")
                let reply = try await rpc.call(Subjects.Webhooks.redeliver, message, context: call)
                return try json(reply, status: .accepted)
            }
        }
    }

    /// A UUID path parameter, lower case.
    func pathID(_ context: GatewayRequestContext, _ parameter: String, naming what: String = "an ID") throws -> String {
        guard let text = context.parameters.get(parameter), text.utf8.count == 36, let id = UUID(uuidString: text) else {
            throw Problem(.badRequest, .invalidArgument, "\(parameter) must be \(what)").field(parameter)
        }
        return id.uuidString.lowercased()
    }
}

extension APICaller {
    /// WH-5: a provider's event, passed on byte for byte with its signature for webhooks to check.
    func addInboundRoutes(to router: Router<GatewayRequestContext>) {
        router.post("/v1/inbound/:provider") { request, context in
            await respond(request, context) { requestID in
                var message = Rampart_V1_InboundRequest()
                message.provider = context.parameters.get("provider") ?? ""
                guard Subjects.InboundEvents.isProviderName(message.provider) else { throw Problem(.notFound, .notFound, "no such inbound provider") }
                guard let signature = request.headers[.stripeSignature] else {
                    throw Problem(.badRequest, .invalidArgument, "the Stripe-Signature header is required").field("signature")
                }
                message.signature = signature
                message.body = Data(buffer: try await jsonBody(request))
                let reply = try await rpc.call(
                    Subjects.Webhooks.receiveInbound,
                    message,
                    context: self.context(requestID, request, context)
                )
                return try json(reply)
            }
        }
    }
}

extension HTTPField.Name {
    static let stripeSignature = Self("Stripe-Signature")!
}
