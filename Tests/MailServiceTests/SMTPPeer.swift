import Foundation
import TestSupport

/// A real SMTP server (aiosmtpd, `Tests/peers/smtp_server.py`) on loopback for one test, and
/// what it received: each message's text and envelope, and every MAIL command it saw.
final class SMTPPeer: @unchecked Sendable {
    let port: Int
    let folder: URL
    private let process: Process

    struct Received {
        var text: String
        var mailFrom: String
        var recipients: [String]
        var tls: Bool
        var login: String?
        var path: String
    }

    /// A certificate for `localhost` and 127.0.0.1, self-signed: the client trusts it as its CA.
    static func certificate(in folder: URL) throws -> (certificate: String, key: String) {
        let certificate = folder.appendingPathComponent("smtp.crt").path
        let key = folder.appendingPathComponent("smtp.key").path
        let made = try ChildProcess.run(
            URL(fileURLWithPath: "/usr/bin/openssl"),
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate, "-days", "1", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ]
        )
        guard made.status == 0 else { throw TestInfrastructureError("openssl: \(made.errors)") }
        return (certificate, key)
    }

    static var python: URL { repositoryRoot.appendingPathComponent(".build-venv/bin/python") }

    /// Starts the server with `options` (see the script: `--starttls`, `--require-tls`, `--auth`,
    /// `--fail-first`, `--reject`, `--implicit-tls`); returns once it listens.
    static func start(_ options: [String] = [], folder: URL? = nil) async throws -> SMTPPeer {
        let folder = folder ?? FileManager.default.temporaryDirectory.appendingPathComponent("smtp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let port = Ports.free()
        let process = Process()
        process.executableURL = python
        process.arguments =
            [repositoryRoot.appendingPathComponent("Tests/peers/smtp_server.py").path, "--port", String(port), "--dir", folder.path] + options
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(
            forWritingTo: {
                let log = folder.appendingPathComponent("server.log")
                _ = FileManager.default.createFile(atPath: log.path, contents: nil)
                return log
            }()
        )
        try ChildProcess.launch(process)
        let peer = SMTPPeer(port: port, folder: folder, process: process)
        for _ in 0..<400 {
            if Ports.isListening(port) { return peer }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        peer.stop()
        let log = (try? String(contentsOf: folder.appendingPathComponent("server.log"), encoding: .utf8)) ?? ""
        throw TestInfrastructureError("the SMTP server did not start: \(log.suffix(2000))")
    }

    private init(port: Int, folder: URL, process: Process) {
        self.port = port
        self.folder = folder
        self.process = process
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        // aiosmtpd can ignore SIGTERM with a session open (its AUTH handler hangs): it gets
        // SIGKILL after a moment, so no peer outlives its test (98 had piled up in one day).
        for _ in 0..<20 where process.isRunning { usleep(100_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// What it accepted so far, in order.
    func received() throws -> [Received] {
        var messages: [Received] = []
        var index = 1
        while let text = try? String(contentsOf: folder.appendingPathComponent("\(index).eml"), encoding: .utf8) {
            let envelope =
                try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("\(index).json"))) as? [String: Any] ?? [:]
            messages.append(
                Received(
                    text: text,
                    mailFrom: envelope["mail_from"] as? String ?? "",
                    recipients: envelope["rcpt_tos"] as? [String] ?? [],
                    tls: envelope["tls"] as? Bool ?? false,
                    login: envelope["login"] as? String,
                    path: folder.appendingPathComponent("\(index).eml").path
                )
            )
            index += 1
        }
        return messages
    }

    /// Every MAIL command the server saw, accepted or not.
    func mailCommands() -> [String] {
        ((try? String(contentsOf: folder.appendingPathComponent("commands.log"), encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// A received message read by Python's own `email` parser: its headers (name → values) and
    /// its decoded text/plain and text/html parts.
    static func parse(_ path: String) throws -> (headers: [String: [String]], text: String, html: String) {
        let script = """
            import email, email.policy, json, sys
            message = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
            headers = {}
            for name, value in message.items():
                headers.setdefault(name.lower(), []).append(str(value))
            text = message.get_body(preferencelist=("plain",)).get_content()
            html = message.get_body(preferencelist=("html",)).get_content()
            print(json.dumps({"headers": headers, "text": text, "html": html}))
            """
        let run = try ChildProcess.run(python, ["-c", script, path])
        guard run.status == 0 else { throw TestInfrastructureError("python email: \(run.errors)") }
        let object = try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any] ?? [:]
        return (object["headers"] as? [String: [String]] ?? [:], object["text"] as? String ?? "", object["html"] as? String ?? "")
    }
}
