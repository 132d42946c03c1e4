import Logging
import Testing

@testable import ServiceKit

@Suite("OPS-3 structured JSON logs")
struct LoggingTests {
    @Test("hostile text cannot break a log line or forge a field")
    func escaping() {
        let forged = "ok\"}\n{\"level\":\"critical\",\"msg\":\"forged\u{1}"
        let quoted = JSONLogHandler.quote(forged)
        #expect(!quoted.contains("\n"))
        #expect(quoted == #""ok\"}\n{\"level\":\"critical\",\"msg\":\"forged\u0001""#)
        let nested = JSONLogHandler.json(.dictionary(["b": "2", "a": .array(["x\ty"])]))
        #expect(nested == #"{"a":["x\ty"],"b":"2"}"#)
    }

    @Test("timestamps are UTC RFC 3339 with milliseconds")
    func timestamp() {
        let text = JSONLogHandler.timestamp()
        #expect(text.count == 24)
        #expect(text.hasSuffix("Z"))
        #expect(text.contains("T"))
        #expect(text.allSatisfy { $0.isNumber || "-:.TZ".contains($0) })
    }
}
