import Foundation
import ServicesTestSupport
import SodiumKit
import TestSupport
import Testing

@testable import ServiceKit
@testable import WebhooksService

/// WH-3's SSRF guard without a network: URL spellings, every blocked range, metadata names and
/// addresses, resolution, the allowlist; and WH-2's signature against the Standard Webhooks
/// example and Python's hmac.
@Suite("WH-3 SSRF guard, WH-2 signatures")
struct WebhookGuardTests {
    /// Answers for host names, as a DNS server would give them.
    static func resolver(_ answers: [String: [String]]) -> DestinationGuard.Resolver {
        { host in
            guard let addresses = answers[host] else { throw SystemResolver.Failure(code: -2) }
            return addresses.compactMap { IPNetwork(address: $0) }
        }
    }

    static let publicAnswers = [
        "hooks.example.com": ["93.184.216.34"],
        "dual.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
        "rebind.example.com": ["93.184.216.34", "10.0.0.7"],
        "private.example.com": ["192.168.1.20"],
        "loopback6.example.com": ["::1"],
        "mapped.example.com": ["::ffff:169.254.169.254"],
    ]

    let guarded = DestinationGuard(policy: AddressPolicy(), resolve: resolver(publicAnswers))

    func refusal(_ url: String, by check: DestinationGuard? = nil) async -> DestinationError? {
        do {
            _ = try await (check ?? guarded).check(url)
            return nil
        } catch {
            return error
        }
    }

    @Test("URLs are normalised: scheme and host in lower case, a trailing dot dropped, default ports left out")
    func normalised() throws {
        let cases = [
            "https://hooks.example.com/x?y=1": "https://hooks.example.com/x?y=1",
            "HTTPS://Hooks.Example.COM.:443/in": "https://hooks.example.com/in",
            "http://hooks.example.com": "http://hooks.example.com/",
            "http://hooks.example.com:8080?a=b": "http://hooks.example.com:8080/?a=b",
            "http://[2606:2800:220:1:248:1893:25C8:1946]:8443/": "http://[2606:2800:220:1:248:1893:25c8:1946]:8443/",
            "http://93.184.216.34/hook": "http://93.184.216.34/hook",
        ]
        for (input, expected) in cases {
            #expect(try Destination(parsing: input).description == expected, "\(input)")
        }
    }

    @Test("every IPv4 spelling parsers accept is read as the address it means")
    func ipv4Spellings() throws {
        let cases = [
            "0x7f.1": "127.0.0.1", "2130706433": "127.0.0.1", "017700000001": "127.0.0.1", "0177.0.0.1": "127.0.0.1",
            "127.1": "127.0.0.1", "0": "0.0.0.0", "0x7f000001": "127.0.0.1", "127.0.1": "127.0.0.1", "0xA9.0xFE.0xA9.0xFE": "169.254.169.254",
            "3232235777": "192.168.1.1", "10.0x0.00.1": "10.0.0.1", "127.0.0.1.": "127.0.0.1",
        ]
        for (host, address) in cases {
            #expect(try Destination(parsing: "http://\(host)/").address?.address == address, "\(host)")
        }
        for invalid in ["256.1.1.1", "1.2.3.4.5", "0x100.1.1.1", "1.2.3.09", "4294967296", "example.123"] {
            #expect(throws: DestinationError.self, "\(invalid)") { try Destination(parsing: "http://\(invalid)/") }
        }
    }

    @Test("what parsers disagree on is refused: other schemes, user info, controls, backslashes, zones, fragments, non-ASCII")
    func malformed() {
        for url in [
            "ftp://hooks.example.com/", "file:///etc/passwd", "gopher://hooks.example.com/", "javascript:alert(1)", "hooks.example.com/x",
            "http://user:pass@hooks.example.com/", "http://hooks.example.com@127.0.0.1/", "http://hooks.example.com\r\nHost: x/",
            "http://hooks example.com/", "http://hooks.example.com\\@127.0.0.1/", "http://[::1%25eth0]/", "http://[::1]x/",
            "http://hooks.example.com:0/", "http://hooks.example.com:65536/", "http://hooks.example.com:8o/", "http://hooks.example.com:/",
            "http://hooks.example.com/#frag", "http://hoöks.example.com/", "http://-hooks.example.com/", "http://hooks..example.com/",
            "http://::1/", "http://[127.0.0.1]/", "http://" + String(repeating: "a", count: 64) + ".example.com/",
            "http://hooks.example.com/" + String(repeating: "a", count: 2100), "",
        ] {
            #expect(throws: DestinationError.self, "\(url.prefix(80))") { try Destination(parsing: url) }
        }
    }

    @Test("every range of WH-3, its IPv4-mapped and -compatible forms, NAT64, 6to4 and Teredo are refused")
    func blockedRanges() async {
        let addresses = [
            "0.0.0.1", "10.1.2.3", "100.64.0.1", "100.127.255.254", "127.0.0.1", "127.255.255.255", "169.254.1.1", "172.16.5.4",
            "172.31.255.255", "192.0.0.8", "192.0.2.1", "192.88.99.1", "192.168.1.1", "198.18.0.1", "198.19.255.1", "198.51.100.1",
            "203.0.113.1", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
            "[::]", "[::1]", "[fe80::1]", "[febf::1]", "[fc00::1]", "[fd12:3456::1]", "[ff02::1]", "[2001:db8::1]", "[100::1]",
            "[64:ff9b::a00:1]", "[64:ff9b::8.8.8.8]", "[64:ff9b:1::1]", "[2002:7f00:1::1]", "[2001:0:4136:e378::1]",
            "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::ffff:10.0.0.1]", "[::127.0.0.1]", "[::8.8.8.8]", "[0:0:0:0:0:ffff:192.168.0.1]",
            // Site-local, and SIIT's IPv4-translated form of 10.0.0.1 and 8.8.8.8 (issue 26).
            "[fec0::1]", "[feff::1]", "[::ffff:0:a00:1]", "[::ffff:0:808:808]",
        ]
        for address in addresses {
            let error = await refusal("http://\(address)/")
            guard case .blocked = error else {
                Issue.record("\(address) was not refused: \(String(describing: error))")
                continue
            }
        }
        // Public addresses pass, and are the address connected to.
        for address in ["93.184.216.34", "8.8.8.8", "100.63.255.255", "172.32.0.1", "[2606:4700::1111]", "[2001:4860:4860::8888]"] {
            #expect(await refusal("https://\(address)/") == nil, "\(address)")
        }
    }

    @Test("metadata and local names are refused by name; names are checked by every address they resolve to")
    func names() async throws {
        for url in [
            "http://localhost/", "http://localhost./", "http://LOCALHOST:8080/", "http://foo.localhost/", "http://metadata.google.internal/",
            "http://metadata.google.internal./computeMetadata/v1/", "http://anything.internal/", "http://printer.local/",
            "http://kubernetes.default.svc/", "http://api.svc.cluster.local/", "http://intranet/", "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/", "http://rebind.example.com/", "http://private.example.com/", "http://loopback6.example.com/",
            "http://mapped.example.com/",
        ] {
            guard case .blocked = await refusal(url) else {
                Issue.record("\(url) was not refused")
                continue
            }
        }
        #expect(await refusal("http://nowhere.example.com/") == .unresolvable("nowhere.example.com does not resolve"))
        let (destination, address) = try await guarded.check("https://dual.example.com/hook")
        #expect(destination.host == "dual.example.com" && address.address == "93.184.216.34")
    }

    @Test("an allowlisted network is reachable; metadata addresses are not, allowlisted or not")
    func allowlist() async throws {
        let allowing = DestinationGuard(
            policy: AddressPolicy(allowlist: ["127.0.0.0/8", "169.254.0.0/16", "fd00::/8"].compactMap { IPNetwork(cidr: $0) }),
            resolve: Self.resolver(Self.publicAnswers)
        )
        #expect(await refusal("http://127.0.0.1:8080/hook", by: allowing) == nil)
        #expect(await refusal("http://169.254.10.10/", by: allowing) == nil)
        for metadata in ["http://169.254.169.254/", "http://[fd00:ec2::254]/", "http://[::ffff:169.254.169.254]/", "http://mapped.example.com/"] {
            guard case .blocked = await refusal(metadata, by: allowing) else {
                Issue.record("\(metadata) was not refused")
                continue
            }
        }
        // Still refused: what the allowlist does not cover.
        guard case .blocked = await refusal("http://10.0.0.1/", by: allowing) else {
            Issue.record("10.0.0.1 was not refused")
            return
        }
    }

    @Test("the system resolver answers from /etc/hosts")
    func systemResolver() async throws {
        let addresses = try await SystemResolver.addresses("localhost").map(\.address)
        #expect(addresses.contains("127.0.0.1"))
        await #expect(throws: (any Error).self) { try await SystemResolver.addresses("no-such-host.invalid") }
    }

    @Test("signatures: the Standard Webhooks example, Python's hmac, two secrets during a rotation")
    func signatures() throws {
        // From the Standard Webhooks specification's reference implementations' tests.
        let secret = try #require(WebhookSignature.decode(secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        let body = Array(#"{"test": 2432232314}"#.utf8)
        #expect(
            WebhookSignature.header(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: body, secrets: [secret])
                == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        )
        let other = WebhookSignature.newSecret()
        let both = WebhookSignature.header(id: "msg_1", timestamp: 1_700_000_000, body: body, secrets: [other, secret])
        let signatures = both.split(separator: " ").map(String.init)
        #expect(signatures.count == 2)
        #expect(
            try WebhookReceiver.pythonSignature(secret: WebhookSignature.encode(secret: other), id: "msg_1", timestamp: 1_700_000_000, body: body)
                == signatures[0]
        )
        #expect(
            try WebhookReceiver.pythonSignature(secret: WebhookSignature.encode(secret: secret), id: "msg_1", timestamp: 1_700_000_000, body: body)
                == signatures[1]
        )
        for bad in ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_AAAA", "whsec_!!!!", "whsec_" + Base64.encode(randomBytes(65))] {
            #expect(WebhookSignature.decode(secret: bad) == nil, "\(bad)")
        }
    }

}

@Suite("webhooks' configuration is read from the environment and checked at start")
struct WebhooksSettingsTests {
    func read(_ environment: [String: String]) -> (WebhooksSettings, [String]) {
        var reader = EnvironmentReader(environment: environment)
        let settings = WebhooksSettings(reader: &reader)
        return (settings, reader.problems)
    }

    @Test("WH-2's defaults (10 s, the spec's schedule, 5 days), overrides, and every bad value named")
    func settings() {
        let key = "RAMPART_WEBHOOKS_KEY_ENCRYPTION_KEYS"
        let (defaults, none) = read([key: "k1:" + Base64.encode(randomBytes(32))])
        #expect(none.isEmpty)
        #expect(defaults.timeoutSeconds == 10 && defaults.responseBodyLimit == 65536 && defaults.disableAfterSeconds == 5 * 86_400)
        #expect(defaults.retrySchedule == [5, 300, 1800, 7200, 18000, 36000, 36000])
        #expect(defaults.allowedNetworks.isEmpty && defaults.inboundSecrets.isEmpty)

        let (custom, fine) = read([
            key: "k1:" + Base64.encode(randomBytes(32)), "RAMPART_WEBHOOKS_ALLOWED_NETWORKS": "127.0.0.0/8,fd00::/8",
            "RAMPART_WEBHOOKS_RETRY_SCHEDULE": "1,2,3", "RAMPART_WEBHOOKS_INBOUND_SECRETS": "stripe=whsec_a=b,github=s3cret",
        ])
        #expect(fine.isEmpty)
        #expect(custom.allowedNetworks.map(\.description) == ["127.0.0.0/8", "fd00::/8"])
        #expect(custom.retrySchedule == [1, 2, 3])
        #expect(custom.inboundSecrets == ["stripe": "whsec_a=b", "github": "s3cret"])

        let (_, problems) = read([
            "RAMPART_WEBHOOKS_ALLOWED_NETWORKS": "10.0.0.0/33", "RAMPART_WEBHOOKS_RETRY_SCHEDULE": "5,0,x",
            "RAMPART_WEBHOOKS_INBOUND_SECRETS": "Stripe=x,nosecret", "RAMPART_WEBHOOKS_TIMEOUT_SECONDS": "0",
        ])
        #expect(problems.count == 7, "\(problems)")
        #expect(problems.allSatisfy { !$0.contains("s3cret") })
    }
}
