/// A URL a tenant chose (a webhook endpoint, WH-3), as the SSRF guard reads it: http or https, a
/// host that is a DNS name or an IP address (every spelling of an IPv4 address that some parser
/// accepts is read as that address), a port, and the path with its query. Whatever parsers could
/// disagree on is refused rather than guessed: user info, control characters and spaces,
/// backslashes, IPv6 zone IDs, non-ASCII host names (give their punycode), fragments.
public struct Destination: Sendable, Hashable, CustomStringConvertible {
    public enum Scheme: String, Sendable { case http, https }

    public let scheme: Scheme
    /// Lower case, without a trailing dot; an IP address in its canonical spelling.
    public let host: String
    /// Set when the host is an IP address.
    public let address: IPNetwork?
    public let port: Int
    /// From the first `/` (or `/` when the URL has none), query included.
    public let target: String

    public static let maximumLength = 2048

    /// The URL as stored and sent: normalised, so the address checked is the address meant.
    public var description: String {
        let defaultPort = scheme == .https ? 443 : 80
        let hostPart = address.map { $0.isIPv4 ? $0.address : "[\($0.address)]" } ?? host
        return "\(scheme.rawValue)://\(hostPart)\(port == defaultPort ? "" : ":\(port)")\(target)"
    }

    public init(parsing text: String) throws(DestinationError) {
        guard text.utf8.count <= Self.maximumLength else { throw .malformed("the URL is longer than \(Self.maximumLength) bytes") }
        guard text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && $0 != "\\" }) else {
            throw .malformed("the URL may hold only printable ASCII, without spaces or backslashes")
        }
        let schemeParts = text.split(separator: "://", maxSplits: 1, omittingEmptySubsequences: false)
        guard schemeParts.count == 2 else { throw .malformed("the URL must start with http:// or https://") }
        guard let scheme = Scheme(rawValue: schemeParts[0].lowercased()) else {
            throw .scheme("only http and https URLs can receive webhooks")
        }
        let rest = schemeParts[1]
        guard !rest.contains("#") else { throw .malformed("the URL must not have a fragment") }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var target = String(rest[authorityEnd...])
        if target.isEmpty || target.hasPrefix("?") { target = "/" + target }
        guard !authority.contains("@") else { throw .malformed("the URL must not carry a user name or password") }

        // Host and port: `[v6]:port`, `host:port`, or either alone.
        var hostText: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw .malformed("an IPv6 address must be closed with ]") }
            hostText = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .malformed("only a port may follow an IPv6 address") }
                portText = after.dropFirst()
            }
            guard !hostText.contains("%") else { throw .malformed("IPv6 zone IDs are not allowed") }
            guard let parsed = IPNetwork(address: String(hostText)), hostText.contains(":") else {
                throw .malformed("\(String(hostText).debugDescription) is not an IPv6 address")
            }
            address = parsed
            host = parsed.address
        } else {
            let parts = authority.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2 else { throw .malformed("an IPv6 address must be written in brackets") }
            hostText = parts[0]
            portText = parts.count == 2 ? parts[1] : nil
            let name = (hostText.hasSuffix(".") ? hostText.dropLast() : hostText).lowercased()
            if let literal = try Self.ipv4Literal(name) {
                address = literal
                host = literal.address
            } else {
                try Self.checkHostName(name)
                address = nil
                host = name
            }
        }
        if let portText {
            guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy(\.isASCII), let value = Int(portText), portText.allSatisfy(\.isNumber),
                (1...65535).contains(value)
            else { throw .malformed("the port must be a number from 1 to 65535") }
            port = value
        } else {
            port = scheme == .https ? 443 : 80
        }
        self.scheme = scheme
        self.target = target
    }

    /// A host whose last label is a number is an IPv4 address to WHATWG URL parsers and to
    /// `inet_aton` alike, in any of the forms they take: `2130706433`, `0x7f.1`, `0177.0.0.1`,
    /// `127.1`. Read it the way they do, or refuse it; nil for a host name.
    static func ipv4Literal(_ host: String) throws(DestinationError) -> IPNetwork? {
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        guard let last = labels.last, isNumber(last) else { return nil }
        guard labels.count <= 4, labels.allSatisfy({ isNumber($0) }) else {
            throw .malformed("\(host.debugDescription) is neither a host name nor an IPv4 address")
        }
        var values: [UInt64] = []
        for label in labels {
            guard let value = numberValue(label) else { throw .malformed("\(host.debugDescription) is not an IPv4 address") }
            values.append(value)
        }
        // a.b.c.d, a.b.c (c fills 16 bits), a.b (b fills 24), a (32 bits).
        let leading = values.dropLast()
        let lastBits = UInt64(8 * (5 - values.count))
        guard leading.allSatisfy({ $0 <= 255 }), values[values.count - 1] < (1 << lastBits) else {
            throw .malformed("\(host.debugDescription) is not an IPv4 address")
        }
        var number: UInt64 = values[values.count - 1]
        for (index, value) in leading.enumerated() { number |= value << UInt64(24 - 8 * index) }
        let bytes = (0..<4).map { UInt8(truncatingIfNeeded: number >> UInt64(24 - 8 * $0)) }
        return IPNetwork(address: bytes.map(String.init).joined(separator: "."))
    }

    private static func isNumber(_ label: Substring) -> Bool {
        let lower = label.lowercased()
        if lower.hasPrefix("0x") { return lower.dropFirst(2).allSatisfy(\.isHexDigit) }
        return !label.isEmpty && label.allSatisfy { $0.isASCII && $0.isNumber }
    }

    /// Decimal, `0x` hexadecimal, or octal with a leading 0, as inet_aton reads them.
    private static func numberValue(_ label: Substring) -> UInt64? {
        let lower = label.lowercased()
        guard lower.count <= 12 else { return nil }
        if lower.hasPrefix("0x") { return lower.count == 2 ? 0 : UInt64(lower.dropFirst(2), radix: 16) }
        if lower.count > 1, lower.hasPrefix("0") { return UInt64(lower.dropFirst(), radix: 8) }
        return UInt64(lower)
    }

    /// RFC 1123 names: ASCII letters, digits and hyphens, labels of 1 to 63, at most 253 in all,
    /// with at least one dot (a single label resolves through search domains to who knows what).
    /// Names that mean this machine, the local network or a cloud's metadata service are refused
    /// by name, whatever they resolve to.
    static func checkHostName(_ name: String) throws(DestinationError) {
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        guard !name.isEmpty, name.utf8.count <= 253,
            labels.allSatisfy({ label in
                (1...63).contains(label.count) && !label.hasPrefix("-") && !label.hasSuffix("-")
                    && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
            })
        else { throw .malformed("\(name.debugDescription) is not a valid host name (give an internationalised name in its xn-- form)") }
        guard labels.count >= 2 else { throw .blocked("\(name.debugDescription) is not a fully qualified host name") }
        if Self.blockedNames.contains(name) || Self.blockedSuffixes.contains(where: { name.hasSuffix($0) }) {
            throw .blocked("\(name) names a local or metadata service")
        }
    }

    static let blockedNames: Set<String> = [
        "metadata.google.internal", "metadata.goog", "metadata.azure.com", "instance-data.ec2.internal", "metadata.packet.net",
        "metadata.platformequinix.com", "metadata.tencentyun.com", "100-100-100-200.aliyun", "kubernetes.default.svc",
    ]
    /// RFC 6761's localhost, mDNS's local, ICANN's private-use internal, and in-cluster names.
    static let blockedSuffixes = [".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".svc", ".cluster.local"]
}

public enum DestinationError: Error, Equatable, CustomStringConvertible {
    case scheme(String)
    case malformed(String)
    /// A name or address that is not on the public internet.
    case blocked(String)
    case unresolvable(String)

    public var description: String {
        switch self {
        case .scheme(let message), .malformed(let message), .blocked(let message), .unresolvable(let message): message
        }
    }
}
