import HTTPTypes
import Hummingbird
import NIOCore
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// GW-7: RFC 9116's security.txt, with the disclosure contact from the settings and an expiry
/// always half a year ahead; the disclosure policy it names (IR-3); and the API's own
/// description.
struct WellKnownRoutes {
    let contact: String
    let publicURL: String
    let document: OpenAPIDocument

    func add(to router: Router<GatewayRequestContext>) {
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: document.json))
        }
        // IR-3: the disclosure policy (SECURITY.md), which security.txt's Policy: names.
        let policy = ByteBuffer(string: SecurityPolicyDocument.markdown)
        router.get("/security-policy") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/markdown; charset=utf-8"], body: .init(byteBuffer: policy))
        }
        let fields =
            "Contact: \(contact)\nPolicy: \(publicURL)/security-policy\nCanonical: \(publicURL)/.well-known/security.txt\nPreferred-Languages: en\n"
        router.get("/.well-known/security.txt") { _, _ in
            let expires = Date(timeIntervalSinceNow: 182 * 86_400)
            let text = fields + "Expires: \(WallClock.rfc3339(milliseconds: Int64(expires.timeIntervalSince1970 * 1000)))\n"
            return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
    }
}
