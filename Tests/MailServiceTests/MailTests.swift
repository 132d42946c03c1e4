import Foundation
import MailService
import NATSKit
import RampartModels
import ServiceKit
import ServicesTestSupport
import SodiumKit
import TenantsService
import TestSupport
import Testing

/// AUTH-10: mail that reaches people, through a real SMTP server (aiosmtpd) on loopback.
@Suite("AUTH-10 mail over real SMTP: STARTTLS, AUTH, retries, dead letters, no header injection", .serialized)
struct MailTests {
    static let from = EmailAddress("no-reply@rampart.example")!

    /// One certificate for every test of the run: making an RSA key per test is needless load.
    static let certificate = Result {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("smtp-certificate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return try SMTPPeer.certificate(in: folder)
    }

    /// A peer with STARTTLS (and `options`), and the client set up to trust its certificate.
    static func secured(
        _ options: [String] = [],
        security: SMTPServer.Security = .startTLS,
        user: String? = nil,
        password: String? = nil
    ) async throws
        -> (SMTPPeer, SMTPServer)
    {
        let (certificate, key) = try Self.certificate.get()
        let peer = try await SMTPPeer.start(["--starttls", certificate, key] + options)
        let server = SMTPServer(host: "localhost", port: peer.port, security: security, user: user, password: password, trustedCAFile: certificate)
        return (peer, server)
    }

    static func message(
        to: String = "ada@lovelace.example",
        toName: String = "Ada",
        subject: String = "Hello",
        fromName: String = "Rampart"
    ) -> MailMessage {
        MailMessage(
            from: from,
            fromName: fromName,
            to: EmailAddress(to)!,
            toName: toName,
            subject: subject,
            text: "Plain text.\r\n.A line that starts with a dot.\r\n",
            html: "<p>HTML</p>",
            id: UUID().uuidString.lowercased(),
            date: Date()
        )
    }

    static func send(_ message: MailMessage, _ server: SMTPServer) async throws {
        try await SMTPClient(server: server, heloName: "rampart.example", timeout: .seconds(20))
            .send(message.rendered(), from: message.from.description, to: message.to.description)
    }

    @Test("STARTTLS then AUTH PLAIN: delivered over TLS, authenticated, one recipient, parts intact")
    func startTLSAndAuth() async throws {
        let (peer, server) = try await Self.secured(["--require-tls", "--auth", "rampart:s3cret-pass"], user: "rampart", password: "s3cret-pass")
        defer { peer.stop() }
        try await Self.send(Self.message(), server)
        let received = try peer.received()
        #expect(received.count == 1)
        #expect(received.first?.tls == true)
        #expect(received.first?.login == "rampart")
        #expect(received.first?.recipients == ["ada@lovelace.example"])
        #expect(received.first?.mailFrom == "no-reply@rampart.example")
        let parsed = try SMTPPeer.parse(try #require(received.first).path)
        #expect(parsed.text.replacingOccurrences(of: "\r\n", with: "\n") == "Plain text.\n.A line that starts with a dot.\n")
        #expect(parsed.headers["to"] == ["Ada <ada@lovelace.example>"])
        #expect(parsed.headers["auto-submitted"] == ["auto-generated"])
    }

    @Test("smtps: TLS from the first byte")
    func implicitTLS() async throws {
        let (peer, server) = try await Self.secured(["--implicit-tls"], security: .implicitTLS)
        defer { peer.stop() }
        try await Self.send(Self.message(), server)
        #expect(try peer.received().first?.tls == true)
    }

    @Test("a server without STARTTLS when TLS is required: refused, nothing sent in clear; no password ever goes in clear")
    func noStartTLS() async throws {
        let peer = try await SMTPPeer.start()
        defer { peer.stop() }
        let server = SMTPServer(host: "127.0.0.1", port: peer.port, security: .startTLS)
        do {
            try await Self.send(Self.message(), server)
            Issue.record("sent without TLS")
        } catch let error as SMTPError {
            #expect(error.transient)
            #expect(error.message.contains("STARTTLS"))
        }
        #expect(peer.mailCommands().isEmpty)
        #expect(try peer.received().isEmpty)
        let plain = SMTPServer(host: "127.0.0.1", port: peer.port, security: .none, user: "rampart", password: "secret")
        do {
            try await Self.send(Self.message(), plain)
            Issue.record("a password went in clear")
        } catch let error as SMTPError {
            #expect(!error.transient)
        }
        #expect(peer.mailCommands().isEmpty)
    }

    @Test("a dead server and a 4xx are transient failures; a 5xx is permanent")
    func failures() async throws {
        let dead = SMTPServer(host: "127.0.0.1", port: Ports.free(), security: .none)
        do {
            try await Self.send(Self.message(), dead)
            Issue.record("a dead server accepted mail")
        } catch let error as SMTPError {
            #expect(error.transient)
        }
        let (busy, busyServer) = try await Self.secured(["--fail-first", "1"])
        defer { busy.stop() }
        do {
            try await Self.send(Self.message(), busyServer)
            Issue.record("451 taken for success")
        } catch let error as SMTPError {
            #expect(error.transient && error.code == 451)
        }
        try await Self.send(Self.message(), busyServer)
        #expect(try busy.received().count == 1)
        let (refusing, refusingServer) = try await Self.secured(["--reject"])
        defer { refusing.stop() }
        do {
            try await Self.send(Self.message(), refusingServer)
            Issue.record("554 taken for success")
        } catch let error as SMTPError {
            #expect(!error.transient && error.code == 554)
        }
    }

    @Test("an attacker's display name and subject with CR/LF never become headers or recipients")
    func headerInjection() async throws {
        let (peer, server) = try await Self.secured()
        defer { peer.stop() }
        let hostile = "Acme\r\nBcc: victim@evil.example\r\nX-Injected: yes"
        try await Self.send(Self.message(toName: hostile, subject: "Hi\r\n\r\nbody", fromName: hostile + " via Rampart"), server)
        let received = try #require(try peer.received().first)
        #expect(received.recipients == ["ada@lovelace.example"])
        let parsed = try SMTPPeer.parse(received.path)
        #expect(parsed.headers["bcc"] == nil)
        #expect(parsed.headers["x-injected"] == nil)
        #expect(parsed.headers["subject"] == ["Hi body"])
        #expect(parsed.headers["to"] == ["\"Acme Bcc: victim@evil.example X-Injected: yes\" <ada@lovelace.example>"])
        #expect(parsed.text.hasPrefix("Plain text."))
    }

    // MARK: The sender, over NATS

    /// rate-limit and mail on one nats-server, mail sending to `server`.
    static func sender(_ server: SMTPServer, retrySeconds: [Int] = [1]) async throws -> TenantsCluster {
        let cluster = try await TenantsCluster.start(without: Set(TenantsCluster.dataOwners))
        cluster.mailSettings = MailSettings(delivery: .smtp(server), from: from, publicURL: "https://id.example.com", retrySeconds: retrySeconds)
        try await cluster.start(.mail)
        return cluster
    }

    static func request(
        template: String = "invitation",
        to: String = "grace@hopper.example",
        id: String = UUID().uuidString.lowercased()
    ) -> Rampart_V1_MailRequest {
        var request = Rampart_V1_MailRequest()
        request.eventID = id
        request.template = template
        request.to = to
        request.tenantName = "Acme <Corp>"
        request.expiresAtMs = WallClock.milliseconds() + 3_600_000
        request.values = ["role": "admin", "inviter": "ada@lovelace.example"]
        MailTokens.seal(Self.token, into: &request, by: .tenants, to: TenantsCluster.mailTokenKeys.currentPublicKey)
        return request
    }
    static let token = "0123456789abcdef0123456789abcdef.c2VjcmV0"

    static func publish(
        _ cluster: TenantsCluster,
        _ request: Rampart_V1_MailRequest,
        by publisher: ServiceName = .tenants,
        messageID: String = UUID().uuidString
    ) async throws {
        _ = try await cluster.client.jetStream().publish(
            try request.serializedBytes(),
            to: Subjects.MailEvents.requested(by: publisher),
            messageID: messageID
        )
    }

    @Test(
        "issue 26, finding 6: a sealed token copied into a mail to another address, of another kind or on another service's subject, a changed one, one sealed to another key and a link without one are never sent"
    )
    func sealedTokens() async throws {
        let (peer, server) = try await Self.secured()
        defer { peer.stop() }
        let cluster = try await Self.sender(server, retrySeconds: [1])
        let genuine = Self.request(to: "grace@hopper.example")
        // What a reader of the stream could build from the genuine request (each under an event
        // ID of its own: the sender and its dead letters tell events apart by it).
        var redirected = Self.request(to: "mallory@evil.example")
        redirected.sealedToken = genuine.sealedToken
        var retemplated = Self.request(template: "password_reset", to: "grace@hopper.example")
        retemplated.sealedToken = genuine.sealedToken
        var copied = Self.request(to: "grace@hopper.example")
        copied.sealedToken = genuine.sealedToken
        var changed = Self.request(to: "mallory@evil.example")
        changed.sealedToken[changed.sealedToken.count - 1] ^= 1
        var unsealed = Self.request(to: "mallory@evil.example")
        unsealed.sealedToken = Data()
        var otherKey = Self.request(to: "mallory@evil.example")
        let stranger = try SealedBox.SecretKeys(parsing: SealedBox.SecretKeys.generate(id: "stranger-1"))
        MailTokens.seal(Self.token, into: &otherKey, by: .tenants, to: stranger.currentPublicKey)
        var sameIDOtherKey = Self.request(to: "mallory@evil.example")
        let impostor = try SealedBox.SecretKeys(parsing: SealedBox.SecretKeys.generate(id: "test-1"))
        MailTokens.seal(Self.token, into: &sameIDOtherKey, by: .tenants, to: impostor.currentPublicKey)

        for hostile in [redirected, retemplated, copied, changed, unsealed, otherKey, sameIDOtherKey] {
            try await Self.publish(cluster, hostile)
        }
        // tenants' sealed token replayed on auth's subject (as a reset's would be on tenants').
        try await Self.publish(cluster, Self.request(to: "mallory@evil.example"), by: .auth)
        try await Self.publish(cluster, genuine)

        var dead: [(reason: String, request: Rampart_V1_MailRequest)] = []
        #expect(
            try await eventually(within: .seconds(30)) {
                dead = try await Self.deadLetters(cluster)
                return dead.count == 8
            }
        )
        let reasons = dead.map(\.reason)
        #expect(reasons.contains { $0.contains("sealed for another mail (to differs)") }, "\(reasons)")
        #expect(reasons.contains { $0.contains("sealed for another mail (event_id differs)") }, "\(reasons)")
        #expect(reasons.contains { $0.contains("sealed for another mail (template differs)") }, "\(reasons)")
        #expect(reasons.contains { $0.contains("sealed for another mail (publisher differs)") }, "\(reasons)")
        #expect(reasons.filter { $0.contains("does not open") }.count == 2, "\(reasons)")
        #expect(reasons.contains { $0.contains("carries none") }, "\(reasons)")
        #expect(reasons.contains { $0.contains("sealed to key \"stranger-1\"") }, "\(reasons)")
        // Only the genuine request reached a mailbox: Grace's, with the token in its link.
        #expect(try await eventually(within: .seconds(10)) { try peer.received().count == 1 })
        let received = try peer.received()
        #expect(received.map(\.recipients) == [["grace@hopper.example"]])
        #expect(try SMTPPeer.parse(received[0].path).text.contains("https://id.example.com/console/invitations/accept?token=\(Self.token)"))
        await cluster.stop()
    }

    @Test(
        "mail's token keys: a pair made as docs/configuration.md and make run make it opens what auth seals; a missing or malformed key is named at start"
    )
    func tokenKeySettings() throws {
        // scripts/run.sh's commands.
        let made = try ChildProcess.run(
            URL(fileURLWithPath: "/bin/sh"),
            [
                "-c",
                """
                set -e; pem=$(openssl genpkey -algorithm X25519)
                echo "mail-1:$(echo "$pem" | openssl pkey -outform DER | tail -c 32 | base64 -w0)"
                echo "mail-1:$(echo "$pem" | openssl pkey -pubout -outform DER | tail -c 32 | base64 -w0)"
                """,
            ]
        )
        #expect(made.status == 0, "\(made.errors)")
        let pair = made.output.split(separator: "\n").map(String.init)
        try #require(pair.count == 2)
        let required = ["RAMPART_MAIL_DIRECTORY": "/tmp/rampart-mail", "RAMPART_MAIL_FROM": "no-reply@rampart.example"]
        var reader = EnvironmentReader(environment: required.merging(["RAMPART_MAIL_TOKEN_KEYS": pair[0]]) { $1 })
        let settings = MailSettings(reader: &reader)
        #expect(reader.problems.isEmpty)
        #expect(settings.tokenKeys.currentPublicKey.text == pair[1])
        var mail = Self.request()
        MailTokens.seal(Self.token, into: &mail, by: .auth, to: try SealedBox.PublicKey(parsing: pair[1]))
        #expect(try MailTokens.open(mail, publishedBy: "auth", with: settings.tokenKeys) == Self.token)

        var missing = EnvironmentReader(environment: required)
        _ = MailSettings(reader: &missing)
        #expect(missing.problems == ["RAMPART_MAIL_TOKEN_KEYS is required"])
        var malformed = EnvironmentReader(environment: required.merging(["RAMPART_MAIL_TOKEN_KEYS": pair[1] + "AA"]) { $1 })
        _ = MailSettings(reader: &malformed)
        #expect(malformed.problems.count == 1 && malformed.problems[0].hasPrefix("RAMPART_MAIL_TOKEN_KEYS must be"), "\(malformed.problems)")
    }

    @Test("a 4xx then 2xx server gets the mail once after a retry; a redelivered event is not sent again; the link and names are right")
    func retriedOnce() async throws {
        let (peer, server) = try await Self.secured(["--fail-first", "1"])
        defer { peer.stop() }
        let cluster = try await Self.sender(server)
        let request = Self.request()
        try await Self.publish(cluster, request)
        #expect(try await eventually(within: .seconds(20)) { try peer.received().count == 1 })
        // The same event again (a publisher's retry past the stream's duplicate window).
        try await Self.publish(cluster, request)
        try await Task.sleep(for: .seconds(2))
        #expect(try peer.received().count == 1)
        let parsed = try SMTPPeer.parse(try #require(try peer.received().first).path)
        #expect(parsed.headers["subject"] == ["Join Acme <Corp> on Rampart"])
        #expect(parsed.headers["from"] == ["\"Acme <Corp> via Rampart\" <no-reply@rampart.example>"])
        #expect(parsed.headers["message-id"] == ["<\(request.eventID)@rampart.example>"])
        #expect(parsed.text.contains("ada@lovelace.example invited you to join Acme <Corp> on Rampart as admin."))
        #expect(parsed.text.contains("https://id.example.com/console/invitations/accept?token=\(Self.token)"))
        // No secret in the subject; the HTML part escapes what people chose.
        #expect(parsed.headers["subject"]?.first?.contains("c2VjcmV0") == false)
        #expect(parsed.html.contains("<strong>Acme &lt;Corp&gt;</strong>") && !parsed.html.contains("<Corp>"))
        await cluster.stop()
    }

    @Test("a permanent refusal, an unknown template, a bad address and the last failed attempt go to the dead letters with the reason")
    func deadLetters() async throws {
        let (peer, server) = try await Self.secured(["--reject"])
        defer { peer.stop() }
        let cluster = try await Self.sender(server, retrySeconds: [1])
        try await Self.publish(cluster, Self.request())
        try await Self.publish(cluster, Self.request(template: "no_such_template"))
        try await Self.publish(cluster, Self.request(to: "not an address\r\nRCPT TO:<x@evil.example>"))
        var dead: [(reason: String, request: Rampart_V1_MailRequest)] = []
        #expect(
            try await eventually(within: .seconds(20)) {
                dead = try await Self.deadLetters(cluster)
                return dead.count == 3
            }
        )
        let reasons = dead.map(\.reason).joined(separator: " | ")
        #expect(reasons.contains("554"), "\(reasons)")
        #expect(reasons.contains("unknown template"), "\(reasons)")
        #expect(reasons.contains("not a valid address"), "\(reasons)")
        #expect(peer.mailCommands().count == 1)
        await cluster.stop()

        // A server that stays down: tried, tried again after the wait, then given up.
        let down = SMTPServer(host: "127.0.0.1", port: Ports.free(), security: .none)
        let second = try await Self.sender(down, retrySeconds: [1])
        try await Self.publish(second, Self.request())
        #expect(
            try await eventually(within: .seconds(20)) {
                try await Self.deadLetters(second).first?.reason.contains("cannot connect") == true
            }
        )
        await second.stop()
    }

    static func deadLetters(_ cluster: TenantsCluster) async throws -> [(reason: String, request: Rampart_V1_MailRequest)] {
        let consumer = try await cluster.client.jetStream().durableConsumer(
            stream: "RAMPART_MAIL_DEAD",
            .init(durableName: "test-\(UUID().uuidString.prefix(8))", filterSubject: "rampart.mail.dead")
        )
        defer { consumer.unsubscribe() }
        var found: [(String, Rampart_V1_MailRequest)] = []
        for message in try await consumer.fetch(batch: 100, timeout: .milliseconds(500)) {
            found.append((message.headers["Rampart-Mail-Error"] ?? "", try Rampart_V1_MailRequest(serializedBytes: message.payload)))
        }
        return found
    }

    @Test("one address gets at most the mail_recipient policy's mails (10 an hour), however many are asked for")
    func recipientLimit() async throws {
        let (peer, server) = try await Self.secured()
        defer { peer.stop() }
        let cluster = try await Self.sender(server)
        for _ in 0..<12 { try await Self.publish(cluster, Self.request(to: "flooded@hopper.example")) }
        try await Self.publish(cluster, Self.request(to: "other@hopper.example"))
        #expect(try await eventually(within: .seconds(20)) { try peer.received().count == 11 })
        try await Task.sleep(for: .seconds(2))
        #expect(try peer.received().count == 11)
        #expect(try peer.received().filter { $0.recipients == ["flooded@hopper.example"] }.count == 10)
        await cluster.stop()
    }

    @Test(
        "TEN-10, AUTH-8 end to end: the sign-up's verification and an invitation reach the SMTP server; the invitation link's token makes the person a member"
    )
    func invitationByMail() async throws {
        let (peer, server) = try await Self.secured()
        defer { peer.stop() }
        let (cluster, port) = try await HTTP.teamsCluster()
        cluster.mailSettings = MailSettings(delivery: .smtp(server), from: Self.from, publicURL: "https://id.example.com")
        try await cluster.start(.mail)
        let (tenant, owner) = try await HTTP.signUp(port, cluster, email: "ada@lovelace.example", number: "732 829 320 00074")
        let invited = try await HTTP.send(
            port,
            "POST",
            "/v1/tenants/\(tenant)/members",
            #"{"email":"grace@hopper.example","role":"MEMBER_ROLE_MEMBER"}"#,
            token: owner
        )
        #expect(invited.status == 201)
        // Ada's address verification from her sign-up, then Grace's invitation.
        #expect(try await eventually(within: .seconds(20)) { try peer.received().count == 2 })
        let verification = try #require(try peer.received().first { $0.recipients == ["ada@lovelace.example"] })
        #expect(try SMTPPeer.parse(verification.path).text.contains("https://id.example.com/console/verify-email?token="))
        let mail = try #require(try peer.received().first { $0.recipients == ["grace@hopper.example"] })
        #expect(mail.tls)
        let text = try SMTPPeer.parse(mail.path).text
        let invitationPage = "https://id.example.com/console/invitations/accept?token="
        let link = try #require(text.split(whereSeparator: \.isWhitespace).first { $0.hasPrefix(invitationPage) })
        let token = String(link.dropFirst(invitationPage.count))
        // Neither token is in clear anywhere in the stream every service can read (finding 6).
        let verificationLink = try #require(
            try SMTPPeer.parse(verification.path).text.split(whereSeparator: \.isWhitespace).first { $0.contains("/verify-email?token=") }
        )
        let secrets = [String(token.split(separator: ".").last ?? ""), String(verificationLink.split(separator: "=").last ?? "")]
        #expect(secrets.allSatisfy { $0.utf8.count >= 43 }, "\(secrets)")
        let events = try await cluster.payloads(Subjects.eventsPrefix + ".>")
        #expect(events.count >= 2)
        for secret in secrets {
            #expect(!events.contains { String(decoding: $0, as: UTF8.self).contains(secret) }, "a token in clear in RAMPART_EVENTS")
        }
        let joined = try await HTTP.send(
            port,
            "POST",
            "/v1/invitations/accept",
            #"{"token":"\#(token)","name":"Grace","password":"\#(HTTP.password)"}"#
        )
        #expect(joined.status == 200, "\(joined.body)")
        #expect(try await HTTP.signIn(port, "grace@hopper.example").status == 200)
        await cluster.stop()
    }

    @Test("AUTH-10 security notices: a sign-in from a new device, a password change and a new API key each mail the account; a known device does not")
    func securityNotices() async throws {
        let (peer, server) = try await Self.secured()
        defer { peer.stop() }
        let (cluster, port) = try await HTTP.teamsCluster()
        cluster.mailSettings = MailSettings(delivery: .smtp(server), from: Self.from, publicURL: "https://id.example.com")
        try await cluster.start(.mail)
        let (tenant, access) = try await HTTP.signUp(port, cluster, email: "ada@lovelace.example", number: "732 829 320 00074")
        func signIn(_ agent: String) async throws -> HTTPTestResponse {
            try await httpRequest(
                port: port,
                "POST",
                "/v1/auth/login",
                headers: ["Content-Type": "application/json", "User-Agent": agent],
                body: Array(#"{"email":"ada@lovelace.example","password":"\#(HTTP.password)"}"#.utf8)
            )
        }
        func notices() throws -> [String] {
            try peer.received().compactMap { try SMTPPeer.parse($0.path).headers["subject"]?.first }.filter { !$0.hasPrefix("Confirm") }
        }
        // signUp signed in once already (no notice for the first sign-in); the same device again: none.
        let again = try await HTTP.send(
            port,
            "POST",
            "/v1/auth/login",
            #"{"email":"ada@lovelace.example","password":"\#(HTTP.password)"}"#
        )
        #expect(again.status == 200, "\(again.body)")
        #expect(try await signIn("Mallory's laptop").status == 200)
        #expect(try await eventually(within: .seconds(20)) { try notices() == ["New sign-in to your Rampart account"] })
        let notice = try #require(
            try peer.received().first { try SMTPPeer.parse($0.path).headers["subject"]?.first?.hasPrefix("New sign-in") == true }
        )
        let text = try SMTPPeer.parse(notice.path).text
        #expect(text.contains("From: 127.0.0.1 (Mallory's laptop)"))
        #expect(notice.recipients == ["ada@lovelace.example"])

        let changed = try await HTTP.send(
            port,
            "POST",
            "/v1/auth/password/change",
            #"{"current_password":"\#(HTTP.password)","new_password":"Correct-h0rse-battery"}"#,
            token: access
        )
        #expect(changed.status == 200, "\(changed.body)")
        _ = try await HTTP.createAPIKey(port, tenant, access, #"{"name":"CI deploys","scopes":["boards:read"]}"#)
        #expect(
            try await eventually(within: .seconds(20)) {
                try Set(notices()) == ["New sign-in to your Rampart account", "Your Rampart password was changed", "A new API key was created"]
            }
        )
        let key = try #require(try peer.received().first { try SMTPPeer.parse($0.path).headers["subject"]?.first == "A new API key was created" })
        #expect(try SMTPPeer.parse(key.path).text.contains("CI deploys (rk_"))
        await cluster.stop()
    }
}
