public import Foundation
import SodiumKit

/// Restores a backup (OPS-2) into a cluster where its databases are missing or empty. Every
/// file is verified before anything is written: a changed, cut-off or incomplete backup is
/// refused whole, and each database is restored in one transaction, so a failure leaves it
/// as empty as it was.
public struct Restore {
    public let settings: BackupSettings
    private let tools: PostgresTools

    public init(settings: BackupSettings) {
        self.settings = settings
        tools = PostgresTools(connection: settings.postgres)
    }

    /// The newest complete backup under `settings.directory`.
    public func latest() throws -> URL {
        let directory = URL(fileURLWithPath: settings.directory)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        guard let newest = names.filter(Backup.isBackupName).max() else { throw BackupError("no backup in \(directory.path)") }
        return directory.appendingPathComponent(newest)
    }

    /// Checks the manifest and every file of the backup in `folder`, decrypting each into
    /// `scratch` (when given); the manifest.
    @discardableResult
    public func verify(_ folder: URL, into scratch: URL? = nil) throws -> BackupManifest {
        let manifest = try BackupManifest.read(from: folder, keys: settings.keys)
        let key = try settings.keys.key(manifest.keyID)
        for database in manifest.databases {
            let output: FileHandle
            if let scratch {
                let path = scratch.appendingPathComponent("\(database.name).dump").path
                guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
                    let handle = FileHandle(forWritingAtPath: path)
                else { throw BackupError("cannot write \(path)") }
                output = handle
            } else {
                output = FileHandle.nullDevice
            }
            defer { if scratch != nil { try? output.close() } }
            try SealedDump.open(
                path: folder.appendingPathComponent(database.file).path,
                key: key,
                database: database.name,
                sha256: database.sha256,
                into: output
            )
        }
        return manifest
    }

    /// Verifies the backup in `folder` whole, then restores each of its databases.
    @discardableResult
    public func run(_ folder: URL) throws -> BackupManifest {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-restore-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: scratch) }
        let manifest = try verify(folder, into: scratch)

        // Every target checked before the first is written: all of the backup goes in, or none.
        var missing: Set<String> = []
        for database in manifest.databases {
            guard try !tools.query("SELECT 1 FROM pg_roles WHERE rolname = '\(database.owner)'").isEmpty else {
                throw BackupError("role \(database.owner) (owner of \(database.name)) does not exist: create the service roles first")
            }
            if try tools.query("SELECT 1 FROM pg_database WHERE datname = '\(database.name)'").isEmpty {
                missing.insert(database.name)
            } else if try tools.query(Self.countTables, database: database.name).first != "0" {
                throw BackupError("database \(database.name) is not empty: restore goes into an empty cluster only")
            }
        }
        for database in manifest.databases {
            if missing.contains(database.name) {
                try tools.run(
                    "psql",
                    ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", "CREATE DATABASE \"\(database.name)\" OWNER \"\(database.owner)\""]
                )
            }
            try tools.run(
                "pg_restore",
                [
                    "--no-password", "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges", "--role=\(database.owner)",
                    "--dbname=\(database.name)", scratch.appendingPathComponent("\(database.name).dump").path,
                ]
            )
        }
        return manifest
    }

    /// Tables outside PostgreSQL's own schemas.
    static let countTables = """
        SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
        """
}
