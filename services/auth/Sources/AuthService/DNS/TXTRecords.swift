import CResolv
import NIOPosix
import ServiceKit

/// TXT lookups (SSO-3's domain proof) through glibc's resolver, on NIO's blocking-work pool:
/// the system's resolvers, or the one `RAMPART_DNS_SERVERS` names. No answer is cached here, so
/// a record changed at the DNS host counts at the next check (as far as resolvers' caches allow).
struct TXTRecords: Sendable {
    /// An IPv4 address and port; nil for the system's resolvers (/etc/resolv.conf).
    let server: (address: String, port: Int)?
    var timeoutSeconds = 3

    enum Failure: Error, Equatable {
        /// No resolver answered, or the answer could not be read.
        case unavailable
    }

    /// Every TXT record of `name` (each one's strings joined); empty when the name has none.
    func lookup(_ name: String) async throws(Failure) -> [String] {
        let server = server
        let timeout = timeoutSeconds
        let result: Int32
        let bytes: [UInt8]
        do {
            (result, bytes) = try await NIOThreadPool.singleton.runIfActive {
                var output = [UInt8](repeating: 0, count: 16 * 1024)
                let written = output.withUnsafeMutableBufferPointer { buffer in
                    rampart_txt_lookup(name, server?.address, Int32(server?.port ?? 53), Int32(timeout), buffer.baseAddress, Int32(buffer.count))
                }
                return (written, output)
            }
        } catch {
            throw .unavailable
        }
        switch result {
        case -1: return []
        case ..<0: throw .unavailable
        default:
            return bytes[..<Int(result)].split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
        }
    }

    /// `RAMPART_DNS_SERVERS`' first entry, `address` or `address:port`.
    static func server(_ text: String) -> (address: String, port: Int)? {
        let parts = text.split(separator: ":")
        guard (1...2).contains(parts.count), IPNetwork(address: String(parts[0]))?.isIPv4 == true else { return nil }
        guard parts.count == 2 else { return (String(parts[0]), 53) }
        guard let port = Int(parts[1]), (1...65535).contains(port) else { return nil }
        return (String(parts[0]), port)
    }
}
