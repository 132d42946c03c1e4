import Logging
import NATSKit
import PostgresNIO
import RampartModels
import ServiceKit
import ServiceLifecycle
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
import SwiftProtobuf
#else
import Foundation
#endif

/// WH-5: events a provider posts to `/v1/inbound/{provider}`, verified the way Stripe signs them
/// and accepted once per event ID, then published for whoever handles that provider.
struct Inbound: Sendable {
    let settings: WebhooksSettings
    let events: InboundEvents
    let jetStream: JetStream
    let clock: DeliveryClock
    let logger: Logger

    static let invalidSignature = RampartError(.invalidArgument, "the signature does not verify", details: ["field": "signature"])

    func receive(_ request: Rampart_V1_InboundRequest, call: CallContext) async throws -> Rampart_V1_InboundReply {
        guard Subjects.InboundEvents.isProviderName(request.provider), let secret = settings.inboundSecrets[request.provider] else {
            throw RampartError(.notFound, "no such inbound provider")
        }
        try Self.verify(
            request.signature,
            body: request.body,
            secret: secret,
            now: clock.milliseconds() / 1000,
            tolerance: settings.inboundToleranceSeconds
        )
        let eventID = try Self.eventID(request.body)
        let now = clock.milliseconds()
        // Recorded and published together: if the publish fails, nothing is recorded and the
        // provider's retry gets a fresh chance.
        var event = Rampart_V1_InboundEvent()
        event.provider = request.provider
        event.eventID = eventID
        event.receivedAtMs = now
        event.payload = request.body
        let recorded = try await events.recordOnce(eventID, from: request.provider, at: now) { [jetStream, event] in
            _ = try await jetStream.publish(
                try event.serializedBytes(),
                to: Subjects.InboundEvents.received(from: event.provider),
                messageID: "inbound-\(event.provider)-\(event.eventID)"
            )
        }
        let duplicate = !recorded
        var reply = Rampart_V1_InboundReply()
        reply.eventID = eventID
        reply.duplicate = duplicate
        return reply
    }

    /// Stripe's scheme: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the secret as
    /// written>`, any number of `v1` (one per live secret), other schemes ignored; `t` within
    /// `tolerance` seconds of now either way. Compared in constant time.
    static func verify(_ header: String, body: Data, secret: String, now: Int64, tolerance: Int) throws(RampartError) {
        guard header.utf8.count <= 4096 else { throw invalidSignature }
        var timestamp: Int64?
        var signatures: [[UInt8]] = []
        for item in header.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            switch parts[0].drop(while: { $0 == " " }) {
            case "t":
                guard timestamp == nil, let value = Int64(parts[1]), value > 0 else { throw invalidSignature }
                timestamp = value
            case "v1":
                if let bytes = SodiumKit.bytes(hex: parts[1].lowercased()), bytes.count == 32 { signatures.append(bytes) }
            default:
                continue
            }
        }
        guard let timestamp, !signatures.isEmpty else {
            throw RampartError(.invalidArgument, "the signature header must carry t= and v1=", details: ["field": "signature"])
        }
        guard abs(now - timestamp) <= Int64(tolerance) else {
            throw RampartError(.invalidArgument, "the signature's timestamp is more than \(tolerance) s away", details: ["field": "signature"])
        }
        let expected = hmacSHA256(key: Array(secret.utf8), message: Array("\(timestamp).".utf8) + Array(body))
        // Every candidate is compared, so the time taken says nothing of which matched.
        var matched = false
        for signature in signatures where constantTimeEquals(signature, expected) { matched = true }
        guard matched else { throw invalidSignature }
    }

    /// The provider's event ID: the `id` of the JSON object posted.
    static func eventID(_ body: Data) throws(RampartError) -> String {
        struct Envelope: Decodable { let id: String }
        guard let id = try? JSONDecoder().decode(Envelope.self, from: body).id, (1...255).contains(id.utf8.count),
            id.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F })
        else { throw RampartError(.invalidArgument, "the body must be a JSON object with an id", details: ["field": "body"]) }
        return id
    }
}

/// Forgets accepted inbound event IDs after 30 days: providers retry for a few days at most.
struct InboundPruning: Service {
    let events: InboundEvents
    let clock: DeliveryClock
    let health: HealthChecks
    let logger: Logger

    static let keptDays = 30

    func run() async throws {
        await repeatEvery(.seconds(3600), "inbound event pruning", health: health, logger: logger) {
            try await events.prune(before: clock.milliseconds() - Int64(Self.keptDays) * 86_400_000)
        }
    }
}
