import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOSSL
import RateLimitKit
import ServiceKit

/// GW-1: the public listener's TLS, when a certificate and key are configured. TLS 1.2 at least
/// (1.3 is chosen whenever the client has it); for 1.2 only ECDHE with AEAD ciphers, so every
/// connection has forward secrecy. TLS 1.3's suites are all modern and not configurable.
public struct GatewayTLS: Sendable {
    /// PEM files: the certificate chain (leaf first) and its private key.
    public var certificatePath: String
    public var keyPath: String
    /// The plain-HTTP listener that only redirects to HTTPS (GW-2), on the public host.
    public var redirectPort: Int
    /// The HTTPS port clients see, when it is not the one the gateway listens on (a load
    /// balancer's 443 in front of the gateway's 8443, say); nil: the listening port.
    public var advertisedPort: Int?

    public init(certificatePath: String, keyPath: String, redirectPort: Int = 8081, advertisedPort: Int? = nil) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.redirectPort = redirectPort
        self.advertisedPort = advertisedPort
    }

    static let tls12Ciphers: [NIOTLSCipher] = [
        .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ]

    /// Reads the certificate and key; throws when either is missing, malformed or the two do not
    /// belong together, so a bad deployment stops at start rather than at the first handshake.
    func configuration() throws -> TLSConfiguration {
        let chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
        guard !chain.isEmpty else { throw GatewayTLSError("\(certificatePath) holds no certificate") }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem))
        )
        configuration.minimumTLSVersion = .tlsv12
        configuration.cipherSuiteValues = Self.tls12Ciphers
        configuration.applicationProtocols = ["http/1.1"]
        // NIOSSLContext checks that the key matches the leaf certificate.
        _ = try NIOSSLContext(configuration: configuration)
        return configuration
    }
}

struct GatewayTLSError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
