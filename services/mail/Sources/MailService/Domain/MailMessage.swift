// String(format:) is Foundation's, not FoundationEssentials'.
public import Foundation
public import RampartModels

/// An outgoing message as RFC 5322 and MIME (RFC 2045-2047) want it, with a plain-text and an
/// HTML part. Header injection is impossible by construction: addresses are validated
/// `EmailAddress`es, and every piece of free text in a header (display names, the subject) is
/// an RFC 2047 encoded word, base64 of its UTF-8, which holds no CR, LF or quote whatever the
/// text was. Bodies are base64 too, so no line is too long and none starts with a dot.
public struct MailMessage: Sendable {
    public var from: EmailAddress
    public var fromName: String
    public var to: EmailAddress
    public var toName: String
    public var subject: String
    public var text: String
    public var html: String
    /// The `Message-ID`'s left part: the event ID, so a redelivery is recognisably the same mail.
    public var id: String
    public var date: Date

    public init(
        from: EmailAddress,
        fromName: String,
        to: EmailAddress,
        toName: String,
        subject: String,
        text: String,
        html: String,
        id: String,
        date: Date
    ) {
        self.from = from
        self.fromName = fromName
        self.to = to
        self.toName = toName
        self.subject = subject
        self.text = text
        self.html = html
        self.id = id
        self.date = date
    }

    /// The whole message, CRLF line ends.
    public func rendered(boundary: String = "rampart-" + UUID().uuidString.lowercased()) -> String {
        var lines = [
            "From: " + Self.mailbox(fromName, from),
            "To: " + Self.mailbox(toName, to),
            "Subject: " + Self.encodedWords(subject),
            "Date: " + Self.date(date),
            "Message-ID: <\(Self.idToken(id))@\(from.domain)>",
            "MIME-Version: 1.0",
            // RFC 3834: an automatic message; auto-responders should not answer it.
            "Auto-Submitted: auto-generated",
            "Content-Type: multipart/alternative; boundary=\"\(boundary)\"",
            "",
        ]
        for (type, body) in [("text/plain", text), ("text/html", html)] {
            lines += ["--\(boundary)", "Content-Type: \(type); charset=utf-8", "Content-Transfer-Encoding: base64", ""]
            lines += Self.base64Lines(Array(body.utf8))
        }
        lines.append("--\(boundary)--")
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// `=?UTF-8?B?…?= <address>`, or the bare address without a name.
    static func mailbox(_ name: String, _ address: EmailAddress) -> String {
        let cleaned = plain(name)
        return cleaned.isEmpty ? "<\(address)>" : "\(encodedWords(cleaned)) <\(address)>"
    }

    /// RFC 2047 encoded words of at most 75 characters, folded onto continuation lines; each
    /// holds whole characters only.
    static func encodedWords(_ text: String) -> String {
        var words: [[UInt8]] = []
        var chunk: [UInt8] = []
        for character in plain(text) {
            let bytes = Array(String(character).utf8)
            if chunk.count + bytes.count > 45 {
                words.append(chunk)
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty || words.isEmpty { words.append(chunk) }
        return words.map { "=?UTF-8?B?\(Data($0).base64EncodedString())?=" }.joined(separator: "\r\n ")
    }

    /// Text for a header, on one line: controls (CR, LF, tabs, NUL…) and direction overrides
    /// become spaces, runs of spaces one, at most 200 characters.
    static func plain(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            let control = scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format
            let space = control || scalar.properties.isWhitespace
            if space { if !out.hasSuffix(" "), !out.isEmpty { out += " " } } else { out.unicodeScalars.append(scalar) }
        }
        return String(String(out.reversed().drop(while: { $0 == " " }).reversed()).prefix(200))
    }

    /// The event ID as the left part of a Message-ID: letters, digits and `-` only.
    static func idToken(_ id: String) -> String {
        let token = String(
            id.unicodeScalars.filter { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-") }.prefix(64)
        )
        return token.isEmpty ? UUID().uuidString.lowercased() : token
    }

    /// RFC 5322 §3.3, in UTC: `Tue, 01 Dec 2026 21:21:07 +0000`.
    static func date(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int?) -> String { String(format: "%02d", value ?? 0) }
        return
            "\(days[(parts.weekday ?? 1) - 1]), \(two(parts.day)) \(months[(parts.month ?? 1) - 1]) \(parts.year ?? 1970) \(two(parts.hour)):\(two(parts.minute)):\(two(parts.second)) +0000"
    }

    static func base64Lines(_ bytes: [UInt8]) -> [String] {
        let encoded = Data(bytes).base64EncodedString()
        var lines: [String] = []
        var index = encoded.startIndex
        while index < encoded.endIndex {
            let end = encoded.index(index, offsetBy: 76, limitedBy: encoded.endIndex) ?? encoded.endIndex
            lines.append(String(encoded[index..<end]))
            index = end
        }
        return lines
    }
}
