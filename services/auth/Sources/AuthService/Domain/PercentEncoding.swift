/// RFC 3986 percent-encoding, for the URIs and form bodies auth writes (TOTP's otpauth URI,
/// an SSO provider's authorization request and token request).
enum PercentEncoding {
    private static let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)
    private static let hex = Array("0123456789ABCDEF".utf8)

    /// Every byte but the unreserved characters and those of `kept`, as %XX.
    static func encode(_ text: String, keeping kept: String = "") -> String {
        let keep = unreserved.union(kept.utf8)
        var output: [UInt8] = []
        for byte in text.utf8 {
            if keep.contains(byte) {
                output.append(byte)
            } else {
                output += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0f)]]
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// `name=value&…`, each side encoded: a query string, or an
    /// `application/x-www-form-urlencoded` body (RFC 6749 appendix B).
    static func query(_ fields: [(String, String)]) -> String {
        fields.map { "\(encode($0.0))=\(encode($0.1))" }.joined(separator: "&")
    }
}
