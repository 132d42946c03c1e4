import Foundation
import RampartModels
import ServiceKit
import ServicesTestSupport
import TestSupport
import Testing
import WebhooksService

/// WH-5 through the gateway: a provider's event verified the way Stripe signs (the signatures
/// computed by Python's hmac), accepted once per event ID, published on RAMPART_EVENTS.
@Suite("WH-5 inbound webhooks")
struct InboundWebhookTests {
    static let secret = "whsec_test_4eC39HqLyjWDarjtT1zdp7dc"

    /// `t=<t>,v1=<hex>` as Python computes it for `body` under `secret`.
    static func stripeSignature(_ body: String, t: Int64, secret: String = secret) throws -> String {
        let script = """
            import hashlib, hmac, sys
            print(hmac.new(sys.argv[1].encode(), (sys.argv[2] + "." + sys.argv[3]).encode(), hashlib.sha256).hexdigest(), end="")
            """
        let run = try ChildProcess.run(URL(fileURLWithPath: "/usr/bin/python3"), ["-c", script, secret, String(t), body])
        guard run.status == 0 else { throw TestInfrastructureError("python3: \(run.errors)") }
        return run.output
    }

    @Test("valid, tampered, wrong secret, stale, replayed, duplicate ID, several v1, malformed: each answered precisely, published once")
    func inbound() async throws {
        let world = try await GatewayWorld.start(webhooks: WebhooksSettings(inboundSecrets: ["stripe": Self.secret]))
        try await stopping(world.cluster) {
            func post(
                _ body: String,
                signature: String?,
                provider: String = "stripe",
                contentType: String = "application/json"
            ) async throws -> HTTPTestResponse {
                var headers = ["Content-Type": contentType]
                if let signature { headers["Stripe-Signature"] = signature }
                return try await httpRequest(port: world.port, "POST", "/v1/inbound/\(provider)", headers: headers, body: Array(body.utf8))
            }
            let signedAt = Int64(Date().timeIntervalSince1970)
            let body = #"{"id":"evt_1","type":"invoice.paid","data":{"object":{"amount":4200}}}"#
            let valid = "t=\(signedAt),v1=\(try Self.stripeSignature(body, t: signedAt))"

            let accepted = try await post(body, signature: valid)
            #expect(accepted.status == 200, "\(accepted.body)")
            #expect(try HTTP.object(accepted)["event_id"] as? String == "evt_1")
            // The same request again (a replay), and the same event ID newly signed: duplicates.
            let replayed = try await post(body, signature: valid)
            #expect(replayed.status == 200)
            #expect(try HTTP.object(replayed)["duplicate"] as? Bool == true)
            let resent = #"{"id":"evt_1","type":"invoice.paid","data":{}}"#
            let again = try await post(resent, signature: "t=\(signedAt + 1),v1=\(try Self.stripeSignature(resent, t: signedAt + 1))")
            #expect(again.status == 200)
            #expect(try HTTP.object(again)["duplicate"] as? Bool == true)

            // Each signature is made just before it is sent: a slow machine must not age them.
            func now() -> Int64 { Int64(Date().timeIntervalSince1970) }
            func signed(_ payload: String, at t: Int64, secret: String = Self.secret) throws -> String {
                "t=\(t),v1=\(try Self.stripeSignature(payload, t: t, secret: secret))"
            }
            let refusals: [(String, () throws -> String?, String)] = [
                (body.replacingOccurrences(of: "4200", with: "1"), { valid }, "tampered body"),
                (body, { try signed(body, at: now(), secret: "whsec_other") }, "another secret"),
                (body, { try signed(body, at: now() - 360) }, "stale"),
                (body, { try signed(body, at: now() + 360) }, "from the future"),
                (
                    body,
                    {
                        let t = now()
                        return "t=\(t - 1),v1=\(try Self.stripeSignature(body, t: t))"
                    }, "t changed"
                ),
                (body, { nil }, "no header"),
                (body, { "" }, "empty header"),
                (body, { "v1=\(try Self.stripeSignature(body, t: now()))" }, "no t"),
                (body, { "t=\(now())" }, "no v1"),
                (body, { "t=abc,v1=zz" }, "garbage"),
                (body, { "t=\(now())," + (try signed(body, at: now())) }, "two t"),
                (body, { "t=9223372036854775807,v1=00" }, "huge t"),
                (body, { String(repeating: "v1=00,", count: 1000) }, "long header"),
            ]
            for (payload, signature, what) in refusals {
                let refused = try await post(payload, signature: try signature())
                #expect(refused.status == 400, "\(what): \(refused.body)")
            }
            // Several v1 values (a secret being rolled): one verifying is enough.
            let rolled = #"{"id":"evt_2","type":"customer.created"}"#
            let several = (try signed(rolled, at: now())).replacingOccurrences(
                of: ",v1=",
                with: ",v1=\(String(repeating: "0", count: 64)),v0=abc,v1="
            )
            #expect(try await post(rolled, signature: several).status == 200)
            // Bodies without an event ID, unknown providers, other media types.
            for unsigned in ["[]", #"{"type":"x"}"#, #"{"id":""}"#, #"{"id":42}"#] {
                #expect(try await post(unsigned, signature: try signed(unsigned, at: now())).status == 400, "\(unsigned)")
            }
            #expect(try await post(body, signature: valid, provider: "paypal").status == 404)
            #expect(try await post(body, signature: valid, provider: "Stripe").status == 404)
            #expect(try await post(body, signature: valid, contentType: "text/plain").status == 415)

            let events = try await world.cluster.events(Subjects.InboundEvents.all, as: Rampart_V1_InboundEvent.self)
            #expect(events.map(\.eventID) == ["evt_1", "evt_2"])
            #expect(events.first.map { String(decoding: $0.payload, as: UTF8.self) } == body)
            #expect(events.allSatisfy { $0.provider == "stripe" })
        }
    }
}
