import SodiumKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 network: an address masked to a prefix length. A single address is a /32 or
/// a /128. IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) are read as the IPv4 address they
/// carry, so a client cannot escape an IPv4 limit or ban by writing its address the other way.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes for IPv4, 16 for IPv6, with every bit past the prefix cleared.
    public let bytes: [UInt8]
    public let prefixLength: Int

    public var isIPv4: Bool { bytes.count == 4 }

    /// A single address, or nil when `text` is not one.
    public init?(address text: String) {
        guard let bytes = Self.parseAddress(text) else { return nil }
        self.bytes = bytes
        prefixLength = bytes.count * 8
    }

    /// `address/prefix`, or a bare address (a single-address network). The address may have
    /// bits set past the prefix (`10.1.2.3/8`); they are cleared.
    public init?(cidr text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let bytes = Self.parseAddress(String(parts[0])) else { return nil }
        var prefix = bytes.count * 8
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), parts[1].allSatisfy(\.isASCII), (0...prefix).contains(parsed) else { return nil }
            prefix = parsed
        }
        self.init(bytes: bytes, prefixLength: prefix)
    }

    init(bytes: [UInt8], prefixLength: Int) {
        var masked = bytes
        for index in masked.indices {
            let bitsKept = max(0, min(8, prefixLength - index * 8))
            masked[index] &= bitsKept == 8 ? 0xFF : ~(0xFF >> bitsKept)
        }
        self.bytes = masked
        self.prefixLength = prefixLength
    }

    /// The network of `prefixLength` bits holding this one (no wider than this one already is).
    public func widened(to prefixLength: Int) -> IPNetwork {
        IPNetwork(bytes: bytes, prefixLength: min(prefixLength, self.prefixLength))
    }

    public func contains(_ other: IPNetwork) -> Bool {
        other.bytes.count == bytes.count && other.prefixLength >= prefixLength && other.widened(to: prefixLength).bytes == bytes
    }

    /// `203.0.113.7/32`, `2001:db8:1:2::/64`.
    public var description: String { "\(address)/\(prefixLength)" }

    /// The network's first address in its canonical spelling: `203.0.113.7`, `2001:db8:1:2::`.
    public var address: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        bytes.withUnsafeBytes { raw in
            _ = inet_ntop(isIPv4 ? AF_INET : AF_INET6, raw.baseAddress, &buffer, socklen_t(buffer.count))
        }
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// A key-value key for this network: `v4_cb007107_32`, letters, digits and `_` only.
    public var storageKey: String {
        "\(isIPv4 ? "v4" : "v6")_\(hexString(bytes))_\(prefixLength)"
    }

    private static func parseAddress(_ text: String) -> [UInt8]? {
        guard !text.isEmpty, text.utf8.count <= 45 else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            return Array(bytes[12..<16])
        }
        return bytes
    }
}

/// How client addresses are grouped for limits and bans: an IPv4 address alone (a /32), IPv6 by
/// its /64 — one host or home usually holds a whole /64 and could rotate through it.
public struct IPGrouping: Sendable, Equatable {
    public var ipv4PrefixLength: Int
    public var ipv6PrefixLength: Int

    public init(ipv4PrefixLength: Int = 32, ipv6PrefixLength: Int = 64) {
        precondition((8...32).contains(ipv4PrefixLength) && (16...128).contains(ipv6PrefixLength))
        self.ipv4PrefixLength = ipv4PrefixLength
        self.ipv6PrefixLength = ipv6PrefixLength
    }

    /// The network `address` counts under, or nil when it is not an IP address.
    public func network(of address: String) -> IPNetwork? {
        IPNetwork(address: address).map { network(of: $0) }
    }

    public func network(of address: IPNetwork) -> IPNetwork {
        address.widened(to: address.isIPv4 ? ipv4PrefixLength : ipv6PrefixLength)
    }
}

extension EnvironmentReader {
    /// A comma-separated list of addresses and CIDR networks under `key`; each entry that is
    /// neither is reported as a problem.
    public mutating func networks(_ key: String) -> [IPNetwork] {
        var networks: [IPNetwork] = []
        for entry in list(key, default: []) {
            if let network = IPNetwork(cidr: entry) {
                networks.append(network)
            } else {
                problem("\(Self.variableName(key)): \(entry.debugDescription) is not an address or CIDR network")
            }
        }
        return networks
    }
}
