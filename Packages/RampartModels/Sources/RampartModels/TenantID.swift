/// A tenant's identifier: 128 random bits written as 32 lowercase hex digits.
///
/// It is the only input from which a tenant's schema name (`t_<32 hex>`) is ever built, so
/// construction is strict: anything but 32 lowercase hex digits (or the same UUID with its four
/// dashes) is refused before it can reach SQL. Upper case is refused rather than folded: one
/// tenant has one spelling, so no two strings name the same schema.
public struct TenantID: Hashable, Sendable, CustomStringConvertible {
    /// 32 lowercase hex digits.
    public let hex: String

    /// Accepts `0123…cdef` (32 lowercase hex digits) or the hyphenated UUID form.
    public init?(_ text: some StringProtocol) {
        var digits: [UInt8] = []
        digits.reserveCapacity(32)
        let utf8 = Array(text.utf8)
        guard utf8.count == 32 || utf8.count == 36 else { return nil }
        for (index, byte) in utf8.enumerated() {
            if utf8.count == 36, [8, 13, 18, 23].contains(index) {
                guard byte == UInt8(ascii: "-") else { return nil }
                continue
            }
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"):
                digits.append(byte)
            default:
                return nil
            }
        }
        guard digits.count == 32 else { return nil }
        self.hex = String(decoding: digits, as: UTF8.self)
    }

    /// A new random tenant ID.
    public static func random() -> TenantID {
        TenantID(randomHex128())!
    }

    /// The tenant's PostgreSQL schema name, unquoted: `t_<32 hex>`.
    public var schemaName: String { "t_" + hex }

    /// The hyphenated UUID form, for JSON and logs.
    public var uuidString: String {
        let characters = Array(hex)
        let groups = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(characters[$0]) }
        return groups.joined(separator: "-")
    }

    public var description: String { uuidString }
}

/// 128 bits from the system's CSPRNG as 32 lowercase hex digits: tenant and request IDs.
public func randomHex128() -> String {
    var generator = SystemRandomNumberGenerator()
    return (0..<2).map { _ in
        let digits = String(generator.next() as UInt64, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }.joined()
}
