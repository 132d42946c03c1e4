import CQREncode

/// QR codes for MFA-1's enrolment, encoded by libqrencode (Debian's `libqrencode-dev`) and drawn
/// as SVG: one path of unit squares on a white field with the four-module quiet zone readers
/// need, scalable to any size without blur.
enum QRCode {
    struct EncodingError: Error, CustomStringConvertible {
        let description: String
    }

    /// The symbol for `text` (8-bit mode, error correction M: 15% of it may be lost) as an SVG
    /// document.
    static func svg(_ text: String) throws -> String {
        let modules = try matrix(text)
        let size = modules.count
        let quiet = 4
        var path = ""
        for (y, row) in modules.enumerated() {
            for (x, dark) in row.enumerated() where dark { path += "M\(x + quiet) \(y + quiet)h1v1h-1z" }
        }
        let side = size + 2 * quiet
        return """
            <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \(side) \(side)" shape-rendering="crispEdges">\
            <rect width="\(side)" height="\(side)" fill="#fff"/><path d="\(path)" fill="#000"/></svg>
            """
    }

    /// Rows of modules, true for dark.
    static func matrix(_ text: String) throws -> [[Bool]] {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, !bytes.contains(0) else { throw EncodingError(description: "nothing to encode, or a NUL byte") }
        // QRcode_encodeData takes the bytes as they are (8-bit mode); version 0: the smallest that fits.
        guard let code = bytes.withUnsafeBufferPointer({ QRcode_encodeData(Int32($0.count), $0.baseAddress, 0, QR_ECLEVEL_M) }) else {
            throw EncodingError(description: "libqrencode could not encode \(bytes.count) bytes")
        }
        defer { QRcode_free(code) }
        let width = Int(code.pointee.width)
        let data = UnsafeBufferPointer(start: code.pointee.data, count: width * width)
        // libqrencode's least significant bit of each byte is the module's colour.
        return (0..<width).map { y in (0..<width).map { x in data[y * width + x] & 1 == 1 } }
    }
}
