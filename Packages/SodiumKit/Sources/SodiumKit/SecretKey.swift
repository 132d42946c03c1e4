import CSodium

/// A 256-bit symmetric key. Its bytes are wiped when it is freed and never printed.
public final class SecretKey: Sendable, CustomStringConvertible, CustomReflectable {
    public static let byteCount = Int(crypto_aead_xchacha20poly1305_ietf_KEYBYTES)

    /// Key material; `nonisolated(unsafe)` only so deinit can wipe it: it is never mutated
    /// otherwise.
    nonisolated(unsafe) private var bytes: [UInt8]

    public init(bytes: [UInt8]) throws(SodiumError) {
        guard bytes.count == Self.byteCount else {
            throw .invalidKey("a key is \(Self.byteCount) bytes, not \(bytes.count)")
        }
        self.bytes = bytes
    }

    /// A new random key.
    public static func generate() -> SecretKey {
        try! SecretKey(bytes: randomBytes(byteCount))
    }

    deinit {
        bytes.withUnsafeMutableBytes { sodium_memzero($0.baseAddress, $0.count) }
    }

    func withBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        try bytes.withUnsafeBytes(body)
    }

    /// Standard base64, for configuration; handle the result as the secret it is.
    public func exportBase64() -> String {
        Base64.encode(bytes)
    }

    public var description: String { "SecretKey(<redacted>)" }
    public var customMirror: Mirror { Mirror(self, children: []) }
}

/// Base64 through libsodium (constant-time, no Foundation needed).
public enum Base64 {
    /// RFC 4648 base64url without padding: tokens and cursors that travel in URLs.
    public static let urlSafeNoPadding = sodium_base64_VARIANT_URLSAFE_NO_PADDING
    /// RFC 4648 base64 with padding.
    public static let standard = sodium_base64_VARIANT_ORIGINAL

    public static func encode(_ bytes: [UInt8], variant: Int32 = Base64.standard) -> String {
        let length = sodium_base64_encoded_len(bytes.count, variant)
        var output = [CChar](repeating: 0, count: length)
        bytes.withUnsafeBufferPointer { input in
            _ = sodium_bin2base64(&output, length, input.baseAddress, input.count, variant)
        }
        return String(nullTerminated: output)
    }

    public static func decode(_ text: String, variant: Int32 = Base64.standard) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        var output = [UInt8](repeating: 0, count: utf8.count / 4 * 3 + 3)
        var written = 0
        let status = utf8.withUnsafeBufferPointer { input in
            input.withMemoryRebound(to: CChar.self) { chars in
                sodium_base642bin(&output, output.count, chars.baseAddress, chars.count, nil, &written, nil, variant)
            }
        }
        guard status == 0 else { return nil }
        return Array(output.prefix(written))
    }
}

extension String {
    /// The text of a NUL-terminated C buffer, never read past its end.
    public init(nullTerminated buffer: [CChar]) {
        self.init(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
