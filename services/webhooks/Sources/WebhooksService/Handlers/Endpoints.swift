import Logging
import NIOCore
import PostgresNIO
import RampartModels
import ServiceKit
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A tenant's endpoints (WH-1): registration with the SSRF check, changes, secret rotation with
/// a grace period. The secret is shown once, when made; stored sealed, bound to its endpoint.
struct Endpoints: Sendable {
    let settings: WebhooksSettings
    let store: EndpointStore
    let destinations: DestinationGuard
    let audit: AuditPublisher
    let logger: Logger

    static let defaultGraceSeconds: UInt32 = 86_400
    static let maximumGraceSeconds: UInt32 = 7 * 86_400
    static let maximumEventTypes = 50

    func create(_ request: Rampart_V1_CreateEndpointRequest, call: CallContext) async throws -> Rampart_V1_CreateEndpointReply {
        let tenant = try await store.database.provisionedTenant(of: call)
        let url = try await checkedURL(request.url)
        let description = try Self.checkedDescription(request.description_p)
        let eventTypes = try Self.checkedEventTypes(request.eventTypes)
        let secret = WebhookSignature.newSecret()
        var reply = Rampart_V1_CreateEndpointReply()
        reply.endpoint = try await store.insert(
            UUID(),
            url: url,
            description: description,
            eventTypes: eventTypes,
            enabled: request.hasEnabled ? request.enabled : true,
            secret: secret,
            maximum: settings.maximumEndpoints,
            in: tenant
        )
        reply.secret = WebhookSignature.encode(secret: secret)
        await changed(reply.endpoint, "created", tenant: tenant, call: call)
        return reply
    }

    func list(_ request: Rampart_V1_ListEndpointsRequest, call: CallContext) async throws -> Rampart_V1_ListEndpointsReply {
        let tenant = try await store.database.provisionedTenant(of: call)
        var reply = Rampart_V1_ListEndpointsReply()
        reply.endpoints = try await store.list(in: tenant)
        return reply
    }

    func get(_ request: Rampart_V1_EndpointRequest, call: CallContext) async throws -> Rampart_V1_EndpointReply {
        let tenant = try await store.database.provisionedTenant(of: call)
        let id = try Self.endpointID(request.endpointID)
        var reply = Rampart_V1_EndpointReply()
        reply.endpoint = try await store.find(id, in: tenant).orThrow(Self.noSuchEndpoint)
        return reply
    }

    func update(_ request: Rampart_V1_UpdateEndpointRequest, call: CallContext) async throws -> Rampart_V1_EndpointReply {
        let tenant = try await store.database.provisionedTenant(of: call)
        let id = try Self.endpointID(request.endpointID)
        let url = request.hasURL ? try await checkedURL(request.url) : nil
        let description = request.hasDescription_p ? try Self.checkedDescription(request.description_p) : nil
        let eventTypes = request.setEventTypes ? try Self.checkedEventTypes(request.eventTypes) : nil
        if !request.setEventTypes, !request.eventTypes.isEmpty {
            throw RampartError.invalidArgument("set set_event_types to replace the event types", field: "set_event_types")
        }
        var reply = Rampart_V1_EndpointReply()
        reply.endpoint = try await store.update(
            id,
            url: url,
            description: description,
            eventTypes: eventTypes,
            enabled: request.hasEnabled ? request.enabled : nil,
            in: tenant
        ).orThrow(Self.noSuchEndpoint)
        await changed(reply.endpoint, "updated", tenant: tenant, call: call)
        return reply
    }

    /// The endpoint goes with its deliveries, and their places in the queue.
    func delete(_ request: Rampart_V1_EndpointRequest, call: CallContext) async throws -> Rampart_V1_EndpointReply {
        let tenant = try await store.database.provisionedTenant(of: call)
        let id = try Self.endpointID(request.endpointID)
        var reply = Rampart_V1_EndpointReply()
        reply.endpoint = try await store.delete(id, in: tenant).orThrow(Self.noSuchEndpoint)
        await changed(reply.endpoint, "deleted", tenant: tenant, call: call)
        return reply
    }

    /// A new secret; the current one keeps signing beside it for the grace period (WH-1).
    func rotateSecret(_ request: Rampart_V1_RotateSecretRequest, call: CallContext) async throws -> Rampart_V1_CreateEndpointReply {
        let tenant = try await store.database.provisionedTenant(of: call)
        let id = try Self.endpointID(request.endpointID)
        let grace = request.hasGraceSeconds ? request.graceSeconds : Self.defaultGraceSeconds
        guard grace <= Self.maximumGraceSeconds else {
            throw RampartError.invalidArgument("grace_seconds must be 0 to \(Self.maximumGraceSeconds) (7 days)", field: "grace_seconds")
        }
        let secret = WebhookSignature.newSecret()
        var reply = Rampart_V1_CreateEndpointReply()
        reply.endpoint = try await store.replaceSecret(id, with: secret, graceSeconds: grace, in: tenant).orThrow(Self.noSuchEndpoint)
        reply.secret = WebhookSignature.encode(secret: secret)
        await changed(reply.endpoint, "secret_rotated", tenant: tenant, call: call)
        return reply
    }

    // MARK: Checks

    static let noSuchEndpoint = RampartError(.notFound, "no such webhook endpoint", details: ["field": "endpoint_id"])

    static func endpointID(_ text: String) throws -> UUID {
        guard text.utf8.count == 36, let id = UUID(uuidString: text) else {
            throw RampartError.invalidArgument("endpoint_id must be an endpoint's ID", field: "endpoint_id")
        }
        return id
    }

    /// The URL normalised, once the SSRF guard let it through (WH-3, at registration).
    func checkedURL(_ text: String) async throws -> String {
        do {
            return try await destinations.check(text).destination.description
        } catch {
            throw RampartError.invalidArgument("url: \(error)", field: "url")
        }
    }

    static func checkedDescription(_ text: String) throws -> String {
        guard text.count <= 500, !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && $0 != "\n" }) else {
            throw RampartError.invalidArgument("the description must be at most 500 characters, without control characters", field: "description")
        }
        return text
    }

    /// 1 to 50 types, each an audit action (`member.invited`), a prefix of some (`member.*`), or
    /// `*`; duplicates dropped. Unknown types are refused, so a typo cannot silence an endpoint.
    static func checkedEventTypes(_ types: [String]) throws -> [String] {
        let known = AuditAction.allCases.map(\.rawValue)
        var kept: [String] = []
        for type in types where !kept.contains(type) {
            let valid: Bool =
                if type == "*" {
                    true
                } else if type.hasSuffix(".*") {
                    type.utf8.count <= 64 && known.contains { $0.hasPrefix(String(type.dropLast())) }
                } else {
                    known.contains(type)
                }
            guard valid else {
                throw RampartError.invalidArgument(
                    "\(String(type.prefix(64)).debugDescription) is not an event type: give an audit action (member.invited), a prefix of some (member.*) or *",
                    field: "event_types"
                )
            }
            kept.append(type)
        }
        guard (1...maximumEventTypes).contains(kept.count) else {
            throw RampartError.invalidArgument("give 1 to \(maximumEventTypes) event types", field: "event_types")
        }
        return kept
    }

    private func changed(_ endpoint: Rampart_V1_WebhookEndpoint, _ change: String, tenant: TenantID, call: CallContext) async {
        var event = Rampart_V1_AuditEvent(
            .webhookEndpointChanged,
            tenant: tenant,
            target: ("webhook_endpoint", endpoint.endpointID),
            call: call,
            service: .webhooks
        )
        event.details = ["change": change, "url": endpoint.url, "enabled": String(endpoint.enabled)]
        await audit.record(event)
    }
}

/// Event types as an endpoint lists them: exact, `prefix.*`, or `*`.
enum EventTypeFilter {
    static func matches(_ type: String, _ filters: [String]) -> Bool {
        filters.contains { filter in
            filter == "*" || filter == type || (filter.hasSuffix(".*") && type.hasPrefix(filter.dropLast()))
        }
    }
}
