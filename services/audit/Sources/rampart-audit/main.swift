// `rampart-audit`: the audit log's offline tools (AUD-5).
//
//   rampart-audit verify --public-key <id>:<base64> [--public-key …] <export.jsonl | ->
//       Checks an unfiltered JSON lines export (GET …/audit-events/export?format=json) against
//       the checkpoint keys you trust. Exit 0: the log holds; 1: it does not (and where); 2: usage.
//   rampart-audit public-key
//       Prints the public half of RAMPART_AUDIT_SIGNING_KEY as <id>:<base64>, to hand to verifiers.
import AuditService
import Foundation
import SodiumKit

func usage(_ message: String) -> Never {
    FileHandle.standardError.write(Data("rampart-audit: \(message)\n".utf8))
    FileHandle.standardError.write(
        Data("usage: rampart-audit verify --public-key <id>:<base64> [--public-key …] <export.jsonl | ->\n       rampart-audit public-key\n".utf8)
    )
    exit(2)
}

func publicKey() -> Never {
    guard let text = ProcessInfo.processInfo.environment["RAMPART_AUDIT_SIGNING_KEY"],
        let entries = try? KeyRing.parseEntries(text), entries.count == 1, let key = try? SigningKey(seed: entries[0].bytes)
    else {
        usage("RAMPART_AUDIT_SIGNING_KEY must be <key id>:<base64 of a 32-byte Ed25519 seed>")
    }
    print("\(entries[0].id):\(Base64.encode(key.publicKey))")
    exit(0)
}

func verify(_ arguments: ArraySlice<String>) -> Never {
    var keys: [String: [UInt8]] = [:]
    var path: String?
    var rest = arguments
    while let argument = rest.popFirst() {
        if argument == "--public-key" {
            guard let value = rest.popFirst(), let entries = try? KeyRing.parseEntries(value),
                entries.allSatisfy({ $0.bytes.count == SigningKey.publicKeyByteCount })
            else {
                usage("--public-key takes <id>:<base64 of a 32-byte Ed25519 public key>")
            }
            for entry in entries { keys[entry.id] = entry.bytes }
        } else if path == nil {
            path = argument
        } else {
            usage("one export at a time")
        }
    }
    guard let path else { usage("name the export to verify (or - for standard input)") }
    guard !keys.isEmpty else { usage("give the public key(s) that signed the checkpoints: --public-key <id>:<base64>") }
    guard let file = path == "-" ? FileHandle.standardInput : FileHandle(forReadingAtPath: path) else { usage("cannot open \(path)") }

    var verifier = AuditExportVerifier(publicKeys: keys)
    var pending: [UInt8] = []
    reading: while true {
        let chunk = (try? file.read(upToCount: 1 << 20)) ?? nil
        guard let chunk, !chunk.isEmpty else { break }
        pending += chunk
        var start = 0
        while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
            if !verifier.feed(pending[start..<newline]) { break reading }
            start = newline + 1
        }
        pending.removeFirst(start)
    }
    if !pending.isEmpty { _ = verifier.feed(pending) }
    let verdict = verifier.finish()
    let chain = verifier.chainIdentity.map { "chain \($0): " } ?? ""
    if verdict.isValid {
        var text = "\(chain)valid: \(verdict.verifiedEvents) events hold, signed through position \(verdict.signedThrough)"
        if verdict.signedThrough == 0 { text += " (no checkpoint yet: the chain links hold, no signature vouches for them)" }
        print(text)
        exit(0)
    }
    print("\(chain)INVALID at position \(verdict.firstBadPosition ?? 0): \(verdict.problem ?? "") (\(verdict.verifiedEvents) events held before it)")
    exit(1)
}

let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "verify": verify(arguments.dropFirst())
case "public-key": publicKey()
default: usage("unknown command \(arguments.first ?? "(none)")")
}
