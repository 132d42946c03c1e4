import Foundation
import NATSKit
import RampartModels
import ServiceKit
import ServicesTestSupport
import TestSupport
import Testing

@testable import GatewayService

/// GW-1 and GW-2 with real clients: OpenSSL's `s_client` for the handshakes, curl for HTTPS.
@Suite("GW-1, GW-2 TLS on the public listener, plain HTTP redirected", .serialized)
struct GatewayTLSTests {
    /// A gateway with TLS on, alone on a NATS server of its own (TLS needs no other service).
    struct TLSGateway {
        let nats: NATSServer
        let gateway: RunningService
        let httpsPort: Int
        let redirectPort: Int
        let certificate: String

        func stop() async { await gateway.stop() }
    }

    static func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// A self-signed P-256 certificate for localhost and 127.0.0.1: (certificate, key) paths.
    static func certificate(in folder: URL, name: String = "gateway") async throws -> (String, String) {
        let certificate = folder.appendingPathComponent("\(name).crt").path
        let key = folder.appendingPathComponent("\(name).key").path
        let made = try await openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", certificate,
            "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        try #require(made.status == 0, "\(made.errors)")
        return (certificate, key)
    }

    static func openssl(_ arguments: [String]) async throws -> (status: Int32, output: String, errors: String) {
        try await offloaded { try ChildProcess.run(URL(fileURLWithPath: "/usr/bin/openssl"), arguments) }
    }

    static func start() async throws -> TLSGateway {
        let (certificate, key) = try await certificate(in: try temporaryFolder())
        let nats = try await NATSServer.start()
        // The gateway is ready once it has read auth's revocations: stand in for auth's bucket.
        let connection = try await NATSConnection.connect(NATSConfiguration(servers: [nats.url], name: "auth"), logger: quietLogger())
        _ = try await connection.jetStream().ensureKeyValue(.init(bucket: Subjects.Auth.revocationsBucket, ttl: .seconds(3600), maxValueSize: 1024))
        await connection.drain()
        let publicPort = ListeningPort()
        let redirectPort = ListeningPort()
        let settings = GatewaySettings(tls: GatewayTLS(certificatePath: certificate, keyPath: key, redirectPort: 0))
        let gateway = try await RunningService.start(
            GatewayService.descriptor(settings: settings, publicPort: publicPort, redirectPort: redirectPort),
            nats: nats,
            instance: "gateway-tls",
            publicHTTP: .init(host: "127.0.0.1", port: 0)
        )
        return TLSGateway(
            nats: nats,
            gateway: gateway,
            httpsPort: await publicPort.wait(),
            redirectPort: await redirectPort.wait(),
            certificate: certificate
        )
    }

    /// A handshake offering exactly `version`; the client's security level is lowered so that it
    /// really offers the old versions (OpenSSL 3 would not, and the test would prove nothing).
    static func handshake(_ port: Int, _ version: String, cipher: String? = nil) async throws -> (status: Int32, output: String, errors: String) {
        var arguments = ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "localhost", version]
        arguments += ["-cipher", cipher ?? "DEFAULT:@SECLEVEL=0"]
        return try await openssl(arguments)
    }

    @Test("TLS 1.3 and 1.2 handshakes succeed; 1.1, 1.0 and a CBC suite are refused by the server")
    func versions() async throws {
        let tls = try await Self.start()
        try await stopping(tls) {

            let tls13 = try await Self.handshake(tls.httpsPort, "-tls1_3")
            #expect(tls13.status == 0, "\(tls13.errors)")
            #expect(tls13.output.contains("New, TLSv1.3"))

            let tls12 = try await Self.handshake(tls.httpsPort, "-tls1_2")
            #expect(tls12.status == 0, "\(tls12.errors)")
            #expect(tls12.output.contains("New, TLSv1.2, Cipher is ECDHE-ECDSA-"), "\(tls12.output)")

            // The server answers an old version with a protocol_version alert: the client offered it.
            for old in ["-tls1_1", "-tls1"] {
                let refused = try await Self.handshake(tls.httpsPort, old)
                #expect(refused.status != 0, "\(old)")
                #expect(refused.errors.contains("alert protocol version"), "\(old): \(refused.errors)")
            }
            // A TLS 1.2 suite without AEAD (CBC with SHA-1), which the client can do but we refuse.
            let cbc = try await Self.handshake(tls.httpsPort, "-tls1_2", cipher: "ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0")
            #expect(cbc.status != 0)
            #expect(cbc.errors.contains("alert handshake failure"), "\(cbc.errors)")
        }
    }

    @Test("the API answers over HTTPS with HSTS; plain HTTP is redirected to the same path over HTTPS")
    func httpsAndRedirect() async throws {
        let tls = try await Self.start()
        try await stopping(tls) {

            let curl = try await offloaded {
                try ChildProcess.run(
                    URL(fileURLWithPath: "/usr/bin/curl"),
                    [
                        "-sS", "-i", "--cacert", tls.certificate, "--resolve", "localhost:\(tls.httpsPort):127.0.0.1",
                        "https://localhost:\(tls.httpsPort)/healthz",
                    ]
                )
            }
            #expect(curl.status == 0, "\(curl.errors)")
            #expect(curl.output.hasPrefix("HTTP/1.1 200"))
            #expect(curl.output.lowercased().contains("strict-transport-security: max-age=63072000"))

            for method in ["GET", "POST", "DELETE"] {
                let redirected = try await httpRequest(port: tls.redirectPort, method, "/v1/auth/whoami?a=1&b=%20")
                #expect(redirected.status == 308, "\(method)")
                #expect(redirected.headers["location"] == "https://127.0.0.1:\(tls.httpsPort)/v1/auth/whoami?a=1&b=%20")
                #expect(redirected.headers["strict-transport-security"] != nil)
            }
            // Nothing is served in clear on the redirect port, not even health.
            #expect(try await httpRequest(port: tls.redirectPort, "GET", "/healthz").status == 308)
            // And the TLS port speaks no cleartext HTTP.
            #expect((try? await httpRequest(port: tls.httpsPort, "GET", "/healthz"))?.status != 200)
        }
    }

    @Test("only a plain host name or IP literal goes into the redirect's Location")
    func redirectHost() {
        #expect(HTTPSRedirectMiddleware.hostName("api.example.com:80") == "api.example.com")
        #expect(HTTPSRedirectMiddleware.hostName("[2001:db8::1]:80") == "[2001:db8::1]")
        #expect(HTTPSRedirectMiddleware.hostName("127.0.0.1") == "127.0.0.1")
        for hostile in ["", "evil.com/@api.example.com", "a b", "api.example.com\\@evil", "[not-ip]", "user@evil.com", "x\u{202E}y"] {
            #expect(HTTPSRedirectMiddleware.hostName(hostile) == nil, "\(hostile)")
        }
    }

    @Test("a key that does not match its certificate, or half a TLS setting, stops the gateway at start")
    func badConfiguration() async throws {
        let folder = try Self.temporaryFolder()
        let (certificate, _) = try await Self.certificate(in: folder, name: "one")
        let (_, otherKey) = try await Self.certificate(in: folder, name: "two")
        for environment in [
            ["RAMPART_GATEWAY_TLS_CERTIFICATE": certificate, "RAMPART_GATEWAY_TLS_KEY": otherKey],
            ["RAMPART_GATEWAY_TLS_CERTIFICATE": certificate],
            ["RAMPART_GATEWAY_TLS_CERTIFICATE": "/nonexistent.crt", "RAMPART_GATEWAY_TLS_KEY": otherKey],
        ] {
            var reader = EnvironmentReader(environment: environment)
            _ = GatewaySettings(reader: &reader)
            #expect(!reader.problems.isEmpty, "\(environment)")
        }
    }
}

extension GatewayTLSTests.TLSGateway: Stoppable {}
