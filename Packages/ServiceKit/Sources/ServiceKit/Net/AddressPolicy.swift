/// The SSRF guard's list of destinations that are not the public internet (WH-3), and the allowlist
/// that lets tests and on-premises installations reach some of them anyway. Cloud metadata
/// addresses stay refused even when an allowlist covers them.
public struct AddressPolicy: Sendable {
    public let allowlist: [IPNetwork]

    public init(allowlist: [IPNetwork] = []) {
        self.allowlist = allowlist
    }

    static let blocked: [IPNetwork] = [
        // IPv4: this network, private, shared (CGNAT), loopback, link-local, IETF protocol
        // assignments, documentation, 6to4 relay anycast, benchmarking, multicast, reserved and
        // broadcast.
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
        "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
        "224.0.0.0/4", "240.0.0.0/4",
        // IPv6: unspecified, loopback, link-local, the deprecated site-local (still routed inside
        // some networks), unique local, multicast, documentation, discard, NAT64 (which reaches
        // any IPv4 address, private ones included), 6to4, Teredo and SIIT's IPv4-translated form
        // (which embed one), and the deprecated IPv4-compatible form. IPv4-mapped addresses are
        // read as the IPv4 address they carry (IPNetwork), so the IPv4 list covers them.
        "::/128", "::1/128", "fe80::/10", "fec0::/10", "fc00::/7", "ff00::/8", "2001:db8::/32", "100::/64", "64:ff9b::/96",
        "64:ff9b:1::/48", "2002::/16", "2001::/32", "::ffff:0:0:0/96", "::/96",
    ].map { IPNetwork(cidr: $0)! }

    /// AWS, GCP, Azure, OpenStack and most others answer on 169.254.169.254; AWS's IPv6 one,
    /// Alibaba's and Oracle's own.
    static let metadata: [IPNetwork] = ["169.254.169.254/32", "fd00:ec2::254/128", "100.100.100.200/32", "192.0.0.192/32"].map {
        IPNetwork(cidr: $0)!
    }

    /// Why `address` must not be connected to, or nil when it may.
    public func refusal(_ address: IPNetwork) -> String? {
        if Self.metadata.contains(where: { $0.contains(address) }) { return "\(address.address) is a cloud metadata address" }
        if allowlist.contains(where: { $0.contains(address) }) { return nil }
        if let range = Self.blocked.first(where: { $0.contains(address) }) {
            return "\(address.address) is not a public address (\(range))"
        }
        return nil
    }
}
