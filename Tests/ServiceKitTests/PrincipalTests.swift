import RampartModels
import ServiceKit
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

@Suite("Principal: the principal header parsed once")
struct PrincipalTests {
    @Test("each kind reads back as it is written, and the IDs come out typed")
    func roundTrip() throws {
        let user = UUID()
        #expect(Principal("user:\(user.uuidString.lowercased())") == Principal(user: user))
        #expect(Principal(user: user).userID == user && Principal(user: user).apiKeyID == nil)
        #expect(Principal("api_key:\(user.uuidString.lowercased())")?.apiKeyID == user)
        #expect(Principal("system:tenants") == Principal(service: .tenants))
        #expect(Principal(service: .rateLimit).description == "system:rate-limit" && Principal(service: .rateLimit).isService)
        // An ID may hold a colon: the kind ends at the first one.
        #expect(Principal("user:a:b") == .user("a:b"))
        #expect(Principal("user:alice")?.userID == nil)
    }

    @Test(
        "anything else is no principal",
        arguments: ["root", "user:", "admin:x", ":x", "user:a b", "user:\(String(repeating: "a", count: 129))", "USER:x"]
    )
    func refused(_ text: String) {
        #expect(Principal(text) == nil)
    }

    @Test("a call context sends the principal and reads it back, or refuses the header")
    func header() throws {
        let sent = CallContext(principal: .apiKey("k9"))
        #expect(try CallContext(headers: sent.headers).principal == .apiKey("k9"))
        var headers = sent.headers
        headers[CallHeader.principal] = "api-key:k9"
        #expect(throws: RampartError.self) { try CallContext(headers: headers) }
    }
}
