import Foundation
import ServicesTestSupport
import TestSupport
import Testing

@testable import AuthService

/// MFA-1's QR code, read back by an independent decoder: the SVG rendered to PNG by librsvg's
/// `rsvg-convert`, then decoded by zbar's `zbarimg` (both Debian packages).
@Suite("MFA-1 the enrolment QR code decodes back to the exact otpauth URI")
struct QRCodeTests {
    func decoded(_ svg: String) async throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("qr-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let svgPath = folder.appendingPathComponent("code.svg").path
        let pngPath = folder.appendingPathComponent("code.png").path
        try Data(svg.utf8).write(to: URL(fileURLWithPath: svgPath))
        let rendered = try await offloaded {
            try ChildProcess.run(URL(fileURLWithPath: "/usr/bin/rsvg-convert"), ["-w", "480", "-o", pngPath, svgPath])
        }
        try #require(rendered.status == 0, "\(rendered.errors)")
        let read = try await offloaded { try ChildProcess.run(URL(fileURLWithPath: "/usr/bin/zbarimg"), ["--raw", "-q", pngPath]) }
        try #require(read.status == 0, "zbarimg found no code: \(read.errors)")
        return String(read.output.dropLast(read.output.hasSuffix("\n") ? 1 : 0))
    }

    @Test("an enrolment URI, a long account and a random secret all read back exactly")
    func roundTrip() async throws {
        let secret = (0..<TOTP.secretBytes).map { _ in UInt8.random(in: 0...255) }
        for email in ["ada@lovelace.example", "a.very.long.address+with-tags_and.dots@subdomain.of.an.organization.example"] {
            let uri = TOTP(secret: secret).uri(email: email)
            let svg = try QRCode.svg(uri)
            #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
            #expect(try await decoded(svg) == uri)
        }
    }

    @Test("nothing, or a NUL byte, is refused rather than encoded")
    func refused() {
        #expect(throws: QRCode.EncodingError.self) { try QRCode.svg("") }
        #expect(throws: QRCode.EncodingError.self) { try QRCode.svg("otpauth://a\u{0}b") }
    }
}
