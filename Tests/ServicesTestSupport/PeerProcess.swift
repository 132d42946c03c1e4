import Foundation
import TestSupport

/// A protocol peer that is a Python program of the test venv (`scripts/venv.sh` installs it at
/// its pinned version), listening on a free loopback port for one test.
package final class PeerProcess: @unchecked Sendable {
    package let port: Int
    package let log: URL
    private let process: Process

    package static var venv: URL { repositoryRoot.appendingPathComponent(".build-venv/bin") }

    /// Runs `program` (a file of the venv's `bin`, or a script path for its python) with
    /// `arguments(port)`; returns once the port listens and the program's log says `ready` (its
    /// own line once it bound the port). A free port can be taken by another test before the
    /// peer binds it (the peer then exits without that line): another is tried, up to 3 times.
    package static func start(
        _ program: String,
        script: String? = nil,
        ready: String,
        _ arguments: (Int) -> [String]
    ) async throws -> PeerProcess {
        var failure: (any Error)?
        for _ in 0..<3 {
            do {
                return try await startOnce(program, script: script, ready: ready, arguments)
            } catch {
                failure = error
            }
        }
        throw failure ?? TestInfrastructureError("\(program) did not start")
    }

    private static func startOnce(
        _ program: String,
        script: String?,
        ready: String,
        _ arguments: (Int) -> [String]
    ) async throws -> PeerProcess {
        let port = Ports.free()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("peer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let log = folder.appendingPathComponent("peer.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = venv.appendingPathComponent(program)
        process.arguments = (script.map { [repositoryRoot.appendingPathComponent($0).path] } ?? []) + arguments(port)
        process.standardOutput = try FileHandle(forWritingTo: log)
        process.standardError = try FileHandle(forWritingTo: log)
        try ChildProcess.launch(process)
        let peer = PeerProcess(port: port, log: log, process: process)
        for _ in 0..<600 {
            if Ports.isListening(port), (try? String(contentsOf: log, encoding: .utf8))?.contains(ready) == true, process.isRunning {
                return peer
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        peer.stop()
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        throw TestInfrastructureError("\(program) did not start: \(text.suffix(2000))")
    }

    private init(port: Int, log: URL, process: Process) {
        self.port = port
        self.log = log
        self.process = process
    }

    package func stop() {
        guard process.isRunning else { return }
        process.terminate()
        for _ in 0..<20 where process.isRunning { usleep(100_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    deinit { stop() }
}

/// PyPI `oidc-provider-mock`: a lenient OpenID provider (RS256 ID tokens, any client, a form
/// that signs in whoever is named) on `http://127.0.0.1:<port>`.
package struct MockOpenIDProvider: Sendable {
    package let peer: PeerProcess
    package var issuer: String { "http://127.0.0.1:\(peer.port)" }

    package static func start(requireNonce: Bool = true, users: [[String: Any]] = []) async throws -> MockOpenIDProvider {
        let claims = try users.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
        let peer = try await PeerProcess.start("oidc-provider-mock", ready: "Uvicorn running on") { port in
            ["-p", String(port), "-n", requireNonce ? "true" : "false"] + claims.flatMap { ["--user-claims", $0] }
        }
        return MockOpenIDProvider(peer: peer)
    }

    package func stop() { peer.stop() }
}

/// A DNS server on loopback (`Tests/peers/dns_server.py`, on PyPI `dnslib`) answering TXT
/// questions from records the test sets, and changes, at any time.
package final class DNSPeer: @unchecked Sendable {
    package let peer: PeerProcess
    /// The file it answers from (JSON: a name with its final dot → its TXT values).
    package let records: URL

    package static func start() async throws -> DNSPeer {
        let records = FileManager.default.temporaryDirectory.appendingPathComponent("dns-\(UUID().uuidString).json")
        try Data("{}".utf8).write(to: records)
        let peer = try await PeerProcess.start("python", script: "Tests/peers/dns_server.py", ready: "dns: listening") { port in
            ["--port", String(port), "--records", records.path]
        }
        return DNSPeer(peer: peer, records: records)
    }

    private init(peer: PeerProcess, records: URL) {
        self.peer = peer
        self.records = records
    }

    /// Replaces every record: `name` (without the final dot) → its TXT values.
    package func set(_ txt: [String: [String]]) throws {
        let object = Dictionary(uniqueKeysWithValues: txt.map { ($0.key + ".", $0.value) })
        try JSONSerialization.data(withJSONObject: object).write(to: records, options: .atomic)
    }

    package func stop() { peer.stop() }
}

/// The strict OpenID provider the tests run (`Tests/peers/strict_oidc_provider.py`, on PyPI
/// `Authlib`): PKCE S256, a nonce and the client's secret required, ES256 and EdDSA keys that
/// rotate on demand, RFC 9207's `iss` in every answer, and misbehaviour on request.
package struct StrictOpenIDProvider: Sendable {
    package let peer: PeerProcess
    package let clientID: String
    package let clientSecret: String
    package var issuer: String { "http://127.0.0.1:\(peer.port)" }

    package static func start(
        redirectURI: String,
        clientID: String = "rampart-strict",
        clientSecret: String = "strict-secret-4f1a"
    )
        async throws -> StrictOpenIDProvider
    {
        let peer = try await PeerProcess.start("python", script: "Tests/peers/strict_oidc_provider.py", ready: "strict-provider: http") { port in
            ["--port", String(port), "--client-id", clientID, "--client-secret", clientSecret, "--redirect-uri", redirectURI]
        }
        return StrictOpenIDProvider(peer: peer, clientID: clientID, clientSecret: clientSecret)
    }

    /// Steers the provider (see the script): the next person, the algorithm, a rotation, a fault.
    package func control(_ order: [String: Any]) async throws {
        let body = try JSONSerialization.data(withJSONObject: order)
        let answer = try await httpRequest(port: peer.port, "POST", "/control", headers: ["Content-Type": "application/json"], body: Array(body))
        guard answer.status == 204 else { throw TestInfrastructureError("control: \(answer.status) \(answer.body)") }
    }

    /// What the provider saw: the last authorization request's parameters and token request's form.
    package func seen() async throws -> [String: [String: String]] {
        let answer = try await httpRequest(port: peer.port, "GET", "/control")
        return (try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: [String: String]]) ?? [:]
    }

    /// The provider's answer to an authorization request (it approves at once, as the person
    /// `control` named): the callback's path and query.
    package func authorize(_ authorizationURL: String) async throws -> String {
        let (port, path) = try SSOBrowser.split(authorizationURL)
        let answer = try await httpRequest(port: port, "GET", path)
        guard answer.status == 302, let location = answer.headers["location"] else {
            throw TestInfrastructureError("authorize: \(answer.status) \(answer.body)")
        }
        return try SSOBrowser.split(location).path
    }

    package func stop() { peer.stop() }
}

/// A journey of `Tests/browser/journeys.py` through the console, in headless Chromium (Debian
/// `chromium` and `chromium-driver`; Selenium, axe-core, pyotp and zxing-cpp from the test venv)
/// against the gateway on `port`. Its screenshots go to `BrowserJourney.screenshots`.
package enum BrowserJourney {
    package static var screenshots: URL { repositoryRoot.appendingPathComponent(".build/test-output/console") }

    /// What the journey learned; a failed step throws with the journey's own account of it.
    @discardableResult
    package static func walk(_ name: String, port: Int, _ inputs: [String: Any] = [:]) async throws -> [String: Any] {
        let arguments = [
            repositoryRoot.appendingPathComponent("Tests/browser/journeys.py").path, name,
            "--base", "http://127.0.0.1:\(port)",
            "--out", screenshots.path,
            "--inputs", String(decoding: try JSONSerialization.data(withJSONObject: inputs), as: UTF8.self),
        ]
        let (status, output, errors) = try await ChildProcess.runAside(PeerProcess.venv.appendingPathComponent("python"), arguments)
        guard status == 0, let line = output.split(separator: "\n").last,
            let learned = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else {
            throw TestInfrastructureError("journey \(name) failed (exit \(status)):\n\(errors.suffix(6000))\n\(output.suffix(2000))")
        }
        return learned
    }
}
