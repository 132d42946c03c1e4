import SodiumKit

/// Standard Webhooks signing (WH-1, WH-2): secrets are `whsec_` and the base64 of the key bytes;
/// a signature is `v1,` and the base64 HMAC-SHA-256 of `<id>.<timestamp>.<body>`.
public enum WebhookSignature {
    public static let secretPrefix = "whsec_"
    /// 32 random bytes for new secrets; the specification accepts 24 to 64.
    public static let secretBytes = 32

    public static func newSecret() -> [UInt8] { randomBytes(secretBytes) }

    public static func encode(secret: [UInt8]) -> String { secretPrefix + Base64.encode(secret) }

    /// The key bytes of a `whsec_` secret of 24 to 64 bytes; nil for anything else.
    public static func decode(secret: String) -> [UInt8]? {
        guard secret.hasPrefix(secretPrefix), let bytes = Base64.decode(String(secret.dropFirst(secretPrefix.count))),
            (24...64).contains(bytes.count)
        else { return nil }
        return bytes
    }

    /// The `webhook-signature` value: one `v1,` signature per secret, space-separated (during a
    /// rotation's grace period the receiver may know either secret).
    public static func header(id: String, timestamp: Int64, body: [UInt8], secrets: [[UInt8]]) -> String {
        let signed = Array("\(id).\(timestamp).".utf8) + body
        return secrets.map { "v1," + Base64.encode(hmacSHA256(key: $0, message: signed)) }.joined(separator: " ")
    }
}
