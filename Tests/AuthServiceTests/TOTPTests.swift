import ServicesTestSupport
import Testing

@testable import AuthService

@Suite("MFA-1 TOTP: RFC 6238's SHA-1 vectors, the ±1 step window, base32, the otpauth URI")
struct TOTPTests {
    /// RFC 6238 appendix B: the SHA-1 rows (8 digits, the 20-byte ASCII seed).
    @Test(
        "RFC 6238 appendix B, SHA-1",
        arguments: [
            (Int64(59), "94287082"), (1_111_111_109, "07081804"), (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"), (2_000_000_000, "69279037"), (20_000_000_000, "65353130"),
        ]
    )
    func rfc6238(time: Int64, expected: String) {
        let totp = TOTP(secret: Array("12345678901234567890".utf8))
        #expect(totp.code(atStep: TOTP.step(at: time), digits: 8) == expected)
        // The 6-digit code is the same value's last six digits.
        #expect(totp.code(atStep: TOTP.step(at: time)) == String(expected.suffix(6)))
    }

    @Test("a code is accepted one step either side and no further, and only as six digits")
    func window() {
        let totp = TOTP(secret: Array("12345678901234567890".utf8))
        let now: Int64 = 1_111_111_111
        let step = TOTP.step(at: now)
        #expect(totp.matchingStep(totp.code(atStep: step), at: now) == step)
        #expect(totp.matchingStep(totp.code(atStep: step - 1), at: now) == step - 1)
        #expect(totp.matchingStep(totp.code(atStep: step + 1), at: now) == step + 1)
        #expect(totp.matchingStep(totp.code(atStep: step - 2), at: now) == nil)
        #expect(totp.matchingStep(totp.code(atStep: step + 2), at: now) == nil)
        for hostile in ["", "12345", "1234567", "12 456", "١٢٣٤٥٦", "12345a", "' OR 1"] {
            #expect(totp.matchingStep(hostile, at: now) == nil, "\(hostile)")
        }
    }

    @Test("base32 as RFC 4648 section 10 spells it, unpadded, and back")
    func base32() {
        for (text, encoded) in [
            ("", ""), ("f", "MY"), ("fo", "MZXQ"), ("foo", "MZXW6"), ("foob", "MZXW6YQ"), ("fooba", "MZXW6YTB"), ("foobar", "MZXW6YTBOI"),
        ] {
            #expect(Base32.encode(Array(text.utf8)) == encoded)
            #expect(Base32.decode(encoded) == Array(text.utf8))
        }
        #expect(Base32.decode("mzxw 6ytb oi") == Array("foobar".utf8))
        #expect(Base32.decode("MZXW1") == nil)
    }

    @Test("the otpauth URI names the issuer, the account and the parameters apps need")
    func uri() {
        let totp = TOTP(secret: Array("12345678901234567890".utf8))
        #expect(
            totp.uri(email: "ada+mfa@lovelace.example")
                == "otpauth://totp/Rampart:ada%2Bmfa@lovelace.example?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Rampart&algorithm=SHA1&digits=6&period=30"
        )
    }
}
