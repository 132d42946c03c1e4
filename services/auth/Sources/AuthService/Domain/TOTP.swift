import Crypto
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// RFC 6238 time-based one-time passwords over RFC 4226's HOTP, as MFA-1 fixes them for every
/// authenticator app: HMAC-SHA-1, 6 digits, 30-second steps from the Unix epoch.
struct TOTP: Sendable {
    static let digits = 6
    static let period: Int64 = 30
    /// RFC 4226 asks for at least 128 bits and recommends 160: the SHA-1 block's natural size.
    static let secretBytes = 20

    let secret: [UInt8]

    /// The time step `unixSeconds` falls in.
    static func step(at unixSeconds: Int64) -> Int64 {
        unixSeconds >= 0 ? unixSeconds / period : (unixSeconds - period + 1) / period
    }

    /// The code for `step`, zero-padded to `digits` (8 for RFC 6238's published vectors).
    func code(atStep step: Int64, digits: Int = TOTP.digits) -> String {
        var counter = UInt64(bitPattern: step).bigEndian
        let message = withUnsafeBytes(of: &counter) { Array($0) }
        let mac = Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: SymmetricKey(data: secret)))
        // RFC 4226 section 5.3: dynamic truncation.
        let offset = Int(mac[mac.count - 1] & 0x0f)
        let binary =
            (UInt32(mac[offset] & 0x7f) << 24) | (UInt32(mac[offset + 1]) << 16) | (UInt32(mac[offset + 2]) << 8) | UInt32(mac[offset + 3])
        var modulus: UInt32 = 1
        for _ in 0..<digits { modulus *= 10 }
        let value = String(binary % modulus)
        return String(repeating: "0", count: digits - value.count) + value
    }

    /// The step within `window` steps of `unixSeconds` whose code is `code`, if any; every
    /// candidate is compared in full, in constant time, so the answer's timing says nothing.
    func matchingStep(_ code: String, at unixSeconds: Int64, window: Int64 = 1) -> Int64? {
        guard code.utf8.count == Self.digits, code.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        let now = Self.step(at: unixSeconds)
        var found: Int64?
        for step in (now - window)...(now + window) where constantTimeEquals(self.code(atStep: step).utf8, code.utf8) {
            found = found ?? step
        }
        return found
    }

    /// The `otpauth://` URI authenticator apps read from the QR code (Google Authenticator's
    /// key URI format), for the account `email` at the issuer Rampart.
    func uri(email: String) -> String {
        // `:` between issuer and account, and `@`, are kept as the format writes them.
        let label = PercentEncoding.encode("Rampart:\(email)", keeping: ":@")
        return "otpauth://totp/\(label)?secret=\(Base32.encode(secret))&issuer=Rampart&algorithm=SHA1&digits=\(Self.digits)&period=\(Self.period)"
    }
}

/// RFC 4648 base32, upper case, without padding: how authenticator apps take a TOTP secret.
enum Base32 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                output.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 0x1f)])
                bits -= 5
            }
        }
        if bits > 0 { output.append(alphabet[Int((buffer << UInt32(5 - bits)) & 0x1f)]) }
        return String(decoding: output, as: UTF8.self)
    }

    /// nil for anything but base32 (case and spaces forgiven, as people type it).
    static func decode(_ text: String) -> [UInt8]? {
        var output: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for character in text.uppercased().utf8 where character != 0x20 && character != 0x3D {
            guard let value = alphabet.firstIndex(of: character) else { return nil }
            buffer = (buffer << 5) | UInt32(value)
            bits += 5
            if bits >= 8 {
                output.append(UInt8((buffer >> UInt32(bits - 8)) & 0xff))
                bits -= 8
            }
        }
        return output
    }
}
