import Foundation
import RampartModels
import ServiceKit
import ServicesTestSupport
import SodiumKit
import TestSupport
import Testing

@testable import AuditService
@testable import AuthService
@testable import BackupKit

/// Two service databases on the test cluster, as `rampart-backup` finds them in production:
/// audit's with a signed hash chain, auth's with a provisioned tenant.
private struct BackupWorld {
    let audit: AuditFixture
    let auth: String
    let directory: URL
    let key = SecretKey.generate()

    var databases: [String] { [audit.database, auth] }

    static func start(events: Int = 120) async throws -> BackupWorld {
        let audit = try await AuditFixture.start(checkpointEvents: 25)
        for batch in stride(from: 1, through: events, by: 40) {
            try await audit.store.append(audit.events(batch...min(batch + 39, events)), to: audit.chain)
        }
        try await audit.store.checkpointIfDue(audit.chain, now: .max)
        let auth = try await TestPostgres.createDatabase(prefix: "rampart_auth")
        let database = try Database(
            .init(host: TestPostgres.server.host, port: TestPostgres.server.port, user: auth, password: auth, database: auth),
            logger: quietLogger()
        )
        let running = Task { await database.client.run() }
        try await database.migrate(AuthMigrations.set)
        try await database.provision(.random(), AuthMigrations.set)
        running.cancel()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("backups-\(UUID().uuidString)")
        return BackupWorld(audit: audit, auth: auth, directory: directory)
    }

    var environment: [String: String] {
        [
            "RAMPART_BACKUP_DIR": directory.path,
            "RAMPART_BACKUP_KEYS": "backup-1:\(key.exportBase64())",
            "RAMPART_BACKUP_DATABASES": databases.joined(separator: ","),
            "RAMPART_BACKUP_POSTGRES_HOST": TestPostgres.server.host,
            "RAMPART_BACKUP_POSTGRES_PORT": String(TestPostgres.server.port),
            "RAMPART_BACKUP_POSTGRES_USER": TestPostgres.server.user,
            "RAMPART_BACKUP_POSTGRES_TLS": "disable",
        ]
    }

    var settings: BackupSettings { get throws { try BackupSettings.fromEnvironment(environment) } }

    func tool(
        _ name: String,
        _ arguments: [String] = [],
        environment extra: [String: String] = [:]
    ) throws -> (status: Int32, output: String, errors: String) {
        try ChildProcess.run(
            repositoryRoot.appendingPathComponent(".build/debug/\(name)"),
            arguments,
            environment: environment.merging(extra) { _, given in given }
        )
    }

    /// Every table of every database, schema-qualified, with its row count.
    func rowCounts() async throws -> [String: String] {
        var counts: [String: String] = [:]
        for database in databases {
            let rows = try await TestPostgres.psql(
                """
                SELECT n.nspname || '.' || c.relname || '=' ||
                    (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
                """,
                database: database
            )
            for line in rows.split(separator: "\n") {
                let parts = line.split(separator: "=", maxSplits: 1)
                counts["\(database):\(parts[0])"] = String(parts[1])
            }
        }
        return counts
    }

    func wipe() async throws {
        for database in databases { try await TestPostgres.psql("DROP DATABASE \(database) WITH (FORCE)") }
    }

    func exists(_ database: String) async throws -> Bool {
        try await TestPostgres.psql("SELECT count(*) FROM pg_database WHERE datname = '\(database)'") == "1"
    }

    /// The audit chain as audit itself verifies it, through a new connection to the database.
    func auditVerdict() async throws -> ChainVerdict {
        let name = audit.database
        let database = try Database(
            .init(host: TestPostgres.server.host, port: TestPostgres.server.port, user: name, password: name, database: name),
            logger: quietLogger()
        )
        let running = Task { await database.client.run() }
        defer { running.cancel() }
        return try await AuditStore(database: database, settings: audit.store.settings, logger: quietLogger()).verify(audit.chain)
    }
}

@Suite("OPS-2 encrypted backups: backup → wipe → restore, and a changed backup is refused")
struct BackupTests {
    @Test("the drill: rampart-backup, the databases dropped, rampart-restore brings back every row and a valid audit chain")
    func drill() async throws {
        let world = try await BackupWorld.start()
        let before = try await world.rowCounts()
        #expect(before["\(world.audit.database):\(world.audit.tenant.schemaName).audit_events"] == "120")
        #expect(try await world.auditVerdict().isValid)

        let backup = try world.tool("rampart-backup")
        #expect(backup.status == 0, "\(backup.errors)")
        let folders = try FileManager.default.contentsOfDirectory(atPath: world.directory.path).filter { $0.hasPrefix("rampart-") }
        #expect(folders.count == 1)
        // Nothing readable in the backup: no table name, no event action.
        for database in world.databases {
            let sealed = try Data(contentsOf: world.directory.appendingPathComponent(folders[0]).appendingPathComponent("\(database).dump.sealed"))
            #expect(sealed.range(of: Data("audit_events".utf8)) == nil && sealed.range(of: Data("CREATE TABLE".utf8)) == nil)
        }

        try await world.wipe()
        #expect(try await !world.exists(world.auth))
        let restore = try world.tool("rampart-restore", ["latest"])
        #expect(restore.status == 0, "\(restore.errors)")
        #expect(try await world.rowCounts() == before)
        let verdict = try await world.auditVerdict()
        #expect(verdict.isValid && verdict.verifiedEvents == 120 && verdict.signedThrough == 120)
        // Restored objects belong to the service's role again, not to the superuser.
        let owner = try await TestPostgres.psql(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'audit_events' AND schemaname = '\(world.audit.tenant.schemaName)'",
            database: world.audit.database
        )
        #expect(owner == world.audit.database)

        // A second restore finds the databases in use and writes nothing.
        let again = try world.tool("rampart-restore", ["latest"])
        #expect(again.status == 1 && again.errors.contains("is not empty"))
        #expect(try await world.rowCounts() == before)
    }

    @Test("a changed, cut-off, incomplete or foreign backup is refused before anything is written")
    func tampered() async throws {
        let world = try await BackupWorld.start(events: 30)
        // The tools run as processes: Foundation's Process, which they use for pg_dump, is not
        // safe inside this parallel test process (TestSupport's ChildProcess says why).
        #expect(try world.tool("rampart-backup").status == 0)
        let folder = try Restore(settings: try world.settings).latest()
        try await world.wipe()
        let auditFile = folder.appendingPathComponent(SealedDump.fileName(world.audit.database))
        let authFile = folder.appendingPathComponent(SealedDump.fileName(world.auth))
        let original = try Data(contentsOf: auditFile)

        func refused(_ expected: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            let restore = try world.tool("rampart-restore", [folder.path])
            #expect(restore.status == 1 && restore.errors.contains(expected), "\(restore.errors)", sourceLocation: sourceLocation)
            for database in world.databases { #expect(try await !world.exists(database), sourceLocation: sourceLocation) }
        }

        // One bit of the dump flipped, deep inside a chunk.
        var flipped = original
        flipped[flipped.count / 2] ^= 0x01
        try flipped.write(to: auditFile)
        try await refused("failed authentication")

        // The file cut short: its final chunk is missing.
        try original.prefix(original.count - 100).write(to: auditFile)
        try await refused("cut off")

        // Another database's dump in its place (sealed under the same key).
        try original.write(to: auditFile)
        let authOriginal = try Data(contentsOf: authFile)
        try original.write(to: authFile)
        try await refused("failed authentication")
        try authOriginal.write(to: authFile)

        // The manifest edited to leave a database out.
        let manifestFile = folder.appendingPathComponent("manifest.json")
        let manifest = try Data(contentsOf: manifestFile)
        var edited = try JSONDecoder().decode(BackupManifest.self, from: manifest)
        edited.databases.removeLast()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try (encoder.encode(edited) + Data("\n".utf8)).write(to: manifestFile)
        try await refused("the manifest was changed")
        try manifest.write(to: manifestFile)

        // A key that did not seal it, under the same ID; then a ring without that ID.
        var other = world.environment
        other["RAMPART_BACKUP_KEYS"] = "backup-1:\(SecretKey.generate().exportBase64())"
        let wrongKey = try world.tool("rampart-restore", [folder.path], environment: other)
        #expect(wrongKey.status == 1 && wrongKey.errors.contains("is not the key that made it"))
        other["RAMPART_BACKUP_KEYS"] = "backup-2:\(SecretKey.generate().exportBase64())"
        let unknownKey = try world.tool("rampart-restore", [folder.path], environment: other)
        #expect(unknownKey.status == 1 && unknownKey.errors.contains("which RAMPART_BACKUP_KEYS does not hold"))
        for database in world.databases { #expect(try await !world.exists(database)) }

        // Untouched again, it verifies and restores; a rotated ring still opens it.
        other["RAMPART_BACKUP_KEYS"] = "backup-2:\(SecretKey.generate().exportBase64()),backup-1:\(world.key.exportBase64())"
        let rotated = try world.tool("rampart-restore", ["--verify-only", folder.path], environment: other)
        #expect(rotated.status == 0, "\(rotated.errors)")
        #expect(try world.tool("rampart-restore", [folder.path]).status == 0)
        #expect(try await world.auditVerdict().verifiedEvents == 30)
    }

    @Test("a dump of many chunks, written in odd pieces, opens whole; its chunks cannot be reordered or dropped")
    func chunks() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sealed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let key = SecretKey.generate()
        let dump = randomBytes(SealedDump.chunkSize * 2 + 12_345)
        let path = folder.appendingPathComponent("d.sealed").path
        let writer = try SealedDump.Writer(path: path, key: key, database: "rampart_x")
        var offset = 0
        for size in [1, 700_001, 3, SealedDump.chunkSize, 999_999] where offset < dump.count {
            try writer.write(Array(dump[offset..<min(offset + size, dump.count)]))
            offset += size
        }
        try writer.write(Array(dump[min(offset, dump.count)...]))
        let sealed = try writer.finish()

        func open(_ bytes: [UInt8]) throws -> [UInt8] {
            let file = folder.appendingPathComponent("d.candidate").path
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            let output = folder.appendingPathComponent("d.out")
            _ = FileManager.default.createFile(atPath: output.path, contents: nil)
            let handle = try FileHandle(forWritingTo: output)
            defer { try? handle.close() }
            try SealedDump.open(path: file, key: key, database: "rampart_x", sha256: hexString(sha256(bytes)), into: handle)
            return Array(try Data(contentsOf: output))
        }
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(Int64(bytes.count) == sealed.bytes && hexString(sha256(bytes)) == sealed.sha256)
        #expect(try open(bytes) == dump)

        // The frames: 16 + 24 bytes of header, then [length][chunk] three times.
        var frames: [[UInt8]] = []
        var position = SealedDump.magic.count + SecretStream.headerByteCount
        while position < bytes.count {
            let length = Int(bytes[position]) << 24 | Int(bytes[position + 1]) << 16 | Int(bytes[position + 2]) << 8 | Int(bytes[position + 3])
            frames.append(Array(bytes[position..<(position + 4 + length)]))
            position += 4 + length
        }
        #expect(frames.count == 3)
        let header = Array(bytes.prefix(SealedDump.magic.count + SecretStream.headerByteCount))
        #expect(throws: BackupError.self) { try open(header + frames[1] + frames[0] + frames[2]) }
        #expect(throws: BackupError.self) { try open(header + frames[0] + frames[1]) }
        #expect(throws: BackupError.self) { try open(header + frames[0] + frames[1] + frames[2] + frames[2]) }
    }

    @Test("rotation keeps the newest backup of each of the last N days and clears half-written ones")
    func rotation() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rotation-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var names: [String] = []
        for day in 1...28 {
            for hour in ["020000", "140000"] { names.append(String(format: "rampart-202611%02dT%@Z", day, hour)) }
        }
        names += ["rampart-20261015T020000Z.partial", "notes", "rampart-latest"]
        for name in names { try FileManager.default.createDirectory(at: directory.appendingPathComponent(name), withIntermediateDirectories: false) }
        let settings = BackupSettings(
            directory: directory.path,
            keys: try KeyRing(parsing: "k:\(SecretKey.generate().exportBase64())"),
            keepDays: 5,
            postgres: .init(host: "127.0.0.1", port: 5432, user: "postgres")
        )
        try Backup(settings: settings).rotate(in: directory, keeping: directory.appendingPathComponent("rampart-20261128T140000Z"))
        #expect(Backup.isBackupName("rampart-" + Backup.stamp(Date(timeIntervalSince1970: 1_795_000_000.9))))
        #expect(Backup.stamp(Date(timeIntervalSince1970: 1_795_000_000.9)) == "20261118T110640Z")
        let kept = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(
            kept == [
                "notes", "rampart-20261124T140000Z", "rampart-20261125T140000Z", "rampart-20261126T140000Z", "rampart-20261127T140000Z",
                "rampart-20261128T140000Z", "rampart-latest",
            ]
        )
    }

    @Test("configuration: keys, databases and the directory are checked before anything runs")
    func configuration() throws {
        #expect(throws: ConfigurationError.self) { try BackupSettings.fromEnvironment([:]) }
        do {
            _ = try BackupSettings.fromEnvironment([
                "RAMPART_BACKUP_DIR": "/tmp/x", "RAMPART_BACKUP_KEYS": "short:AAAA",
                "RAMPART_BACKUP_DATABASES": "rampart_auth,\"; DROP DATABASE x; --",
                "RAMPART_BACKUP_KEEP_DAYS": "0",
            ])
            Issue.record("accepted")
        } catch {
            #expect(error.problems.count == 3, "\(error.problems)")
        }
        let defaults = try BackupSettings.fromEnvironment([
            "RAMPART_BACKUP_DIR": "/tmp/x", "RAMPART_BACKUP_KEYS": "k:\(SecretKey.generate().exportBase64())",
        ])
        #expect(defaults.databases == ["rampart_auth", "rampart_tenants", "rampart_permissions", "rampart_audit", "rampart_webhooks"])
        #expect(defaults.keepDays == 30)
        let noArguments = try ChildProcess.run(repositoryRoot.appendingPathComponent(".build/debug/rampart-backup"), ["--now"])
        #expect(noArguments.status == 2)
        let usage = try ChildProcess.run(repositoryRoot.appendingPathComponent(".build/debug/rampart-restore"), [])
        #expect(usage.status == 2 && usage.errors.contains("usage"))
    }
}
