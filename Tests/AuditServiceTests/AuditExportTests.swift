import Foundation
import RampartModels
import ServiceKit
import ServicesTestSupport
import SodiumKit
import TestSupport
import Testing

@testable import AuditService

@Suite("AUD-3 / AUD-5 exports stream in chunks; the JSON one verifies offline, the CSV one is safe to open")
struct AuditExportTests {
    @Test("an export in many chunks holds every event once, and `rampart-audit verify` accepts it")
    func chunkedAndVerifiable() async throws {
        let fixture = try await AuditFixture.start(checkpointEvents: 10)
        try await fixture.store.append(fixture.events(1...45), to: fixture.chain)
        try await fixture.store.append(fixture.events(46...53), to: fixture.chain)
        try await fixture.store.checkpointIfDue(fixture.chain, now: .max)  // signs 53 (the time half)

        let (export, chunks) = try await fixture.export(.jsonl, rowsPerChunk: 7)
        #expect(chunks == 8)
        let lines = export.split(separator: UInt8(ascii: "\n")).map { String(decoding: $0, as: UTF8.self) }
        #expect(lines.filter { $0.hasPrefix("{\"position\":") }.count == 53)
        #expect(lines.filter { $0.hasPrefix("{\"checkpoint\":") }.count == 2)  // 45 (the first batch), 53 (the time half)
        let verdict = fixture.verifyOffline(export)
        #expect(verdict == ChainVerdict(verifiedEvents: 53, firstBadPosition: nil, problem: nil, signedThrough: 53))

        // The CLI says the same, and exits 1 on a tampered file.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("audit-\(UUID()).jsonl")
        try Data(export).write(to: file)
        let key = "\(fixture.store.settings.signingKeyID):\(Base64.encode(fixture.store.settings.signingKey.publicKey))"
        let (status, output) = try runTool(["verify", "--public-key", key, file.path])
        #expect(status == 0)
        #expect(output.contains("valid: 53 events hold, signed through position 53"))
        var tampered = lines
        tampered[5] = tampered[5].replacingOccurrences(of: "\"admin-", with: "\"admix-")
        try Data(tampered.joined(separator: "\n").utf8).write(to: file)
        let (badStatus, badOutput) = try runTool(["verify", "--public-key", key, file.path])
        #expect(badStatus == 1)
        #expect(badOutput.contains("INVALID"))
        #expect(try runTool(["verify", file.path]).status == 2)  // no trusted key given
    }

    @Test("offline verify names a changed, removed, inserted or reordered line, and distrusts other keys")
    func offlineTamper() async throws {
        let fixture = try await AuditFixture.start(checkpointEvents: 5)
        for batch in [1...5, 6...10, 11...12] { try await fixture.store.append(fixture.events(batch), to: fixture.chain) }
        let lines = try await fixture.export(.jsonl).bytes.split(separator: UInt8(ascii: "\n")).map(Array.init)
        func position(_ line: [UInt8]) -> Int? {
            let text = String(decoding: line, as: UTF8.self)
            guard text.hasPrefix("{\"position\":") else { return nil }
            return Int(text.dropFirst(12).prefix { $0.isNumber })
        }
        func index(of target: Int) -> Int { lines.firstIndex { position($0) == target }! }
        func verify(_ lines: [[UInt8]], keys: [String: [UInt8]]? = nil) -> ChainVerdict {
            fixture.verifyOffline(Array(lines.joined(separator: [UInt8(ascii: "\n")])), publicKeys: keys)
        }
        #expect(verify(lines).isValid)

        // The readable event changed, the hashed bytes not: the line no longer renders the same.
        var changed = lines
        changed[index(of: 4)] = Array(String(decoding: lines[index(of: 4)], as: UTF8.self).replacingOccurrences(of: "admin-4", with: "admin-9").utf8)
        #expect(verify(changed).firstBadPosition == 4)
        var removed = lines
        removed.remove(at: index(of: 7))
        #expect(verify(removed).firstBadPosition == 7)
        var inserted = lines
        inserted.insert(lines[index(of: 3)], at: index(of: 8))
        #expect(verify(inserted).firstBadPosition == 8)
        var swapped = lines
        swapped.swapAt(index(of: 2), index(of: 3))
        #expect(verify(swapped).firstBadPosition == 2)
        var truncated = lines
        truncated.removeLast(2)  // event 12 (no checkpoint after 10 yet) and event 11
        #expect(verify(truncated).problem == "chain head does not match the last event")
        #expect(verify(lines, keys: ["audit-1": SigningKey.generate().publicKey]).problem == "checkpoint at 5 has no valid signature")
        #expect(verify([Array("not json".utf8)]).problem == "line 1 is not JSON of this export format")
    }

    @Test("a filtered export is not passed off as the whole log")
    func filtered() async throws {
        let fixture = try await AuditFixture.start()
        try await fixture.store.append(fixture.events(1...6), to: fixture.chain)
        var filter = Rampart_V1_AuditFilter()
        filter.actorID = "admin-2"
        let export = try await fixture.export(.jsonl, filter).bytes
        #expect(export.split(separator: UInt8(ascii: "\n")).count == 2)
        #expect(fixture.verifyOffline(export).problem?.contains("filtered") == true)
    }

    @Test(
        "CSV cells that a spreadsheet would evaluate (= + - @, tab, CR, and those after a ; in ;-separated locales) are escaped; quoting is RFC 4180"
    )
    func csvInjection() async throws {
        let fixture = try await AuditFixture.start()
        let hostile = [
            "=HYPERLINK(\"http://evil\",\"x\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "a,b \"c\"\nd", "x;=cmd|' /C calc'!A0",
            "a;b\tc",
        ]
        let plain: Set = ["a,b \"c\"\nd", "a;b\tc"]
        try await fixture.store.append(
            fixture.events(1...hostile.count) { event, index in
                event.actor.name = hostile[index - 1]
                event.reason = hostile[index - 1]
                event.details = ["note": hostile[index - 1]]
            },
            to: fixture.chain
        )
        let csv = String(decoding: try await fixture.export(.csv).bytes, as: UTF8.self)
        let rows = parseCSV(csv)
        #expect(rows.count == hostile.count + 1)
        #expect(rows[0] == AuditCSV.columns)
        let name = AuditCSV.columns.firstIndex(of: "actor_name")!
        let reason = AuditCSV.columns.firstIndex(of: "reason")!
        for (index, value) in hostile.enumerated() {
            let expected = plain.contains(value) ? value : "'" + value
            #expect(rows[index + 1][name] == expected)
            #expect(rows[index + 1][reason] == expected)
            for cell in rows[index + 1] { #expect(!cell.hasPrefix("=") && !cell.hasPrefix("+") && !cell.hasPrefix("@")) }
        }
        // A ;-separated spreadsheet keeps every cell with a ; or a tab whole: they are quoted.
        #expect(csv.contains("\"'x;=cmd|' /C calc'!A0\"") && csv.contains("\"a;b\tc\""))
        #expect(rows[1][AuditCSV.columns.firstIndex(of: "occurred_at")!] == "2023-11-14T22:14:20.000Z")
        #expect(WallClock.rfc3339(milliseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(WallClock.rfc3339(milliseconds: 951_782_400_123) == "2000-02-29T00:00:00.123Z")
        #expect(WallClock.rfc3339(milliseconds: -1) == "1969-12-31T23:59:59.999Z")
    }
}

/// Runs the built `rampart-audit` (make test builds it): exit status and standard output.
func runTool(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let (status, output, _) = try ChildProcess.run(repositoryRoot.appendingPathComponent(".build/debug/rampart-audit"), arguments)
    return (status, output)
}

/// RFC 4180 rows (quoted cells may hold commas, doubled quotes and line breaks).
func parseCSV(_ text: String) -> [[String]] {
    var rows: [[String]] = []
    var row: [String] = []
    var cell = ""
    var quoted = false
    var characters = Array(text.unicodeScalars)[...]
    while let character = characters.popFirst() {
        if quoted {
            if character == "\"" {
                if characters.first == "\"" {
                    cell.unicodeScalars.append("\"")
                    characters.removeFirst()
                } else {
                    quoted = false
                }
            } else {
                cell.unicodeScalars.append(character)
            }
        } else if character == "\"" {
            quoted = true
        } else if character == "," {
            row.append(cell)
            cell = ""
        } else if character == "\r" && characters.first == "\n" {
            characters.removeFirst()
            row.append(cell)
            rows.append(row)
            (row, cell) = ([], "")
        } else {
            cell.unicodeScalars.append(character)
        }
    }
    return rows
}
