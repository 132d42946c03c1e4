public import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One JSON object per line on stdout: what log collectors under Kubernetes expect.
/// Fields: `ts` (UTC, RFC 3339 with milliseconds), `level`, `service`, `logger`, `msg`, then the
/// metadata (request IDs travel as metadata).
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    private let service: String

    public init(label: String, service: String, level: Logger.Level) {
        self.label = label
        self.service = service
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("ts", Self.quote(Self.timestamp())),
            ("level", Self.quote(event.level.rawValue)),
            ("service", Self.quote(service)),
            ("logger", Self.quote(label)),
            ("msg", Self.quote(event.message.description)),
        ]
        let merged = self.metadata.merging(event.metadata ?? [:]) { $1 }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            fields.append((key, Self.json(value)))
        }
        if event.level >= .error {
            fields.append(("source", Self.quote("\(event.file):\(event.line)")))
        }
        let line = "{" + fields.map { "\(Self.quote($0.0)):\($0.1)" }.joined(separator: ",") + "}\n"
        writeLine(line, to: STDOUT_FILENO)
    }

    static func json(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let string): quote(string)
        case .stringConvertible(let convertible): quote(convertible.description)
        case .array(let array): "[" + array.map(json).joined(separator: ",") + "]"
        case .dictionary(let dictionary):
            "{" + dictionary.sorted { $0.key < $1.key }.map { "\(quote($0.key)):\(json($0.value))" }.joined(separator: ",") + "}"
        }
    }

    static func quote(_ string: String) -> String { JSONText.quote(string) }

    static func timestamp() -> String { WallClock.rfc3339(milliseconds: WallClock.milliseconds()) }
}

/// One write(2) per line: unbuffered, so nothing is lost at exit, and lines from several threads
/// never interleave.
func writeLine(_ line: String, to descriptor: Int32) {
    var bytes = Array(line.utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeMutableBytes { write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
        if written <= 0 { return }
        offset += written
    }
}

/// JSON text written by hand where a whole encoder would cost more than the line it writes.
public enum JSONText {
    /// `string` as a JSON string literal.
    public static func quote(_ string: String) -> String {
        var result = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case let c where c.value < 0x20:
                let hex = String(c.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
