import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The SSRF guard for every outbound call to a URL a tenant chose (WH-3: at a webhook's
/// registration and before every delivery): the URL parsed and normalised, its host resolved,
/// and every address it resolves to checked. The address returned is the one the call
/// connects to (the HTTP client is told to use it for that host), so no second lookup
/// can answer differently: no DNS-rebinding window.
public struct DestinationGuard: Sendable {
    /// A host name's addresses. The system's resolver by default; tests give their own answers.
    public typealias Resolver = @Sendable (_ host: String) async throws -> [IPNetwork]

    public let policy: AddressPolicy
    let resolve: Resolver

    public init(policy: AddressPolicy, resolve: @escaping Resolver = SystemResolver.addresses) {
        self.policy = policy
        self.resolve = resolve
    }

    /// `url` as it will be stored and called, and the address to connect to.
    public func check(_ url: String) async throws(DestinationError) -> (destination: Destination, address: IPNetwork) {
        let destination = try Destination(parsing: url)
        return (destination, try await check(destination))
    }

    /// The address to connect to for `destination`: refused when any address the host resolves
    /// to is not public (a name with one private answer among public ones is a rebinding setup).
    public func check(_ destination: Destination) async throws(DestinationError) -> IPNetwork {
        let addresses: [IPNetwork]
        if let address = destination.address {
            addresses = [address]
        } else {
            do {
                addresses = try await resolve(destination.host)
            } catch {
                throw .unresolvable("\(destination.host) does not resolve")
            }
            guard !addresses.isEmpty else { throw .unresolvable("\(destination.host) does not resolve") }
        }
        for address in addresses {
            if let refusal = policy.refusal(address) { throw .blocked(refusal) }
        }
        return addresses[0]
    }
}

/// getaddrinfo(3) on NIO's blocking-work pool: what the system resolves (and /etc/hosts says).
public enum SystemResolver {
    struct Failure: Error { let code: Int32 }

    public static func addresses(_ host: String) async throws -> [IPNetwork] {
        try await NIOThreadPool.singleton.runIfActive { try lookup(host) }
    }

    static func lookup(_ host: String) throws -> [IPNetwork] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0, let list else { throw Failure(code: status) }
        defer { freeaddrinfo(list) }
        var found: [IPNetwork] = []
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let current = entry {
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            if let address = current.pointee.ai_addr {
                switch Int32(address.pointee.sa_family) {
                case AF_INET:
                    address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                        var raw = v4.pointee.sin_addr
                        _ = inet_ntop(AF_INET, &raw, &text, socklen_t(text.count))
                    }
                case AF_INET6:
                    address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                        var raw = v6.pointee.sin6_addr
                        _ = inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count))
                    }
                default: break
                }
            }
            let spelled = text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            if let network = IPNetwork(address: spelled), !found.contains(network) { found.append(network) }
            entry = current.pointee.ai_next
        }
        return found
    }
}
