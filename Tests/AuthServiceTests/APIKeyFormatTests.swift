import ServicesTestSupport
import Testing

@testable import AuthService

@Suite("KEY-1's key format: rk_, an 8-character name, 256 random bits")
struct APIKeyFormatTests {
    @Test("a new key reads back as its prefix and secret; keys and names do not repeat")
    func roundTrip() throws {
        var prefixes = Set<String>()
        for _ in 0..<1000 {
            let made = APIKeyFormat.new()
            #expect(made.key.utf8.count == APIKeyFormat.length)
            let parsed = try #require(APIKeyFormat.parse(made.key))
            #expect(parsed.prefix == made.prefix && parsed.secret == made.secret)
            prefixes.insert(made.prefix)
        }
        #expect(prefixes.count == 1000)
    }

    @Test("anything else is no key: wrong length, prefix, alphabet or secret")
    func refused() {
        let key = APIKeyFormat.new().key
        let hostile = [
            "", "rk_", String(key.dropLast()), key + "A", "rx_" + key.dropFirst(3), "rk_ABCDEFGH" + key.dropFirst(11),
            "rk_abc\u{0}efgh" + key.dropFirst(11), String(key.prefix(11)) + String(repeating: "!", count: 43),
        ]
        for text in hostile { #expect(APIKeyFormat.parse(text) == nil, "\(text.debugDescription)") }
    }

    @Test("scope names are plain tokens")
    func scopeNames() {
        for name in ["boards:read", "audit.read", "a_b-c"] { #expect(APIKeyFormat.isScopeName(name)) }
        for name in ["", "Boards:read", "boards read", "boards\u{0}read", String(repeating: "a", count: 65), "boards;drop"] {
            #expect(!APIKeyFormat.isScopeName(name), "\(name.debugDescription)")
        }
    }
}
