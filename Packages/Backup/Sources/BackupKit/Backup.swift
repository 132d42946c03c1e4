public import Foundation
import ServiceKit
import SodiumKit

#if canImport(Glibc)
import Glibc
#endif

/// Makes backups (OPS-2): every configured database dumped with pg_dump (custom format,
/// compressed), each dump sealed as it streams, a manifest, then rotation.
public struct Backup {
    public let settings: BackupSettings
    private let tools: PostgresTools

    public init(settings: BackupSettings) {
        self.settings = settings
        tools = PostgresTools(connection: settings.postgres)
    }

    /// A backup's folder name: `rampart-<UTC time>`, which sorts by time.
    static let folderPrefix = "rampart-"

    /// Makes one backup under `settings.directory` and rotates; the new backup's folder. Nothing
    /// is left behind when it fails: the folder appears under its name only once complete.
    @discardableResult
    public func run(now: Date = Date()) throws -> URL {
        let directory = URL(fileURLWithPath: settings.directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let lock = try DirectoryLock(directory)
        defer { lock.release() }

        let name = Self.folderPrefix + Self.stamp(now)
        let folder = directory.appendingPathComponent(name)
        let partial = directory.appendingPathComponent(name + ".partial")
        guard !FileManager.default.fileExists(atPath: folder.path) else { throw BackupError("\(folder.path) exists already") }
        try? FileManager.default.removeItem(at: partial)
        try FileManager.default.createDirectory(at: partial, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        do {
            let keyID = settings.keys.currentKeyID
            let key = try settings.keys.key(keyID)
            var entries: [BackupManifest.Database] = []
            for database in settings.databases {
                guard let owner = try tools.query("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '\(database)'").first else {
                    throw BackupError("database \(database) does not exist")
                }
                guard PostgresConnection.isPlainIdentifier(owner) else {
                    throw BackupError("database \(database)'s owner \(owner.debugDescription) is not a plain role name")
                }
                let file = SealedDump.fileName(database)
                let writer = try SealedDump.Writer(path: partial.appendingPathComponent(file).path, key: key, database: database)
                try tools.stream("pg_dump", ["--format=custom", "--no-password", "--dbname=\(database)"]) { try writer.write($0) }
                let sealed = try writer.finish()
                entries.append(.init(name: database, owner: owner, file: file, bytes: sealed.bytes, sha256: sealed.sha256))
            }
            let version = try tools.query("SHOW server_version").first ?? ""
            let manifest = BackupManifest(createdAt: Self.rfc3339(now), keyID: keyID, postgresVersion: version, databases: entries)
            try manifest.write(to: partial, keys: settings.keys)
            try FileManager.default.moveItem(at: partial, to: folder)
        } catch {
            try? FileManager.default.removeItem(at: partial)
            throw error
        }
        try rotate(in: directory, keeping: folder)
        return folder
    }

    /// Keeps the newest backup of each of the `keepDays` most recent days that have one, and
    /// removes every other backup, and what a crashed run left half-written.
    func rotate(in directory: URL, keeping current: URL) throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        let backups = names.filter { Self.isBackupName($0) }.sorted(by: >)
        var days: Set<Substring> = []
        var removals: [String] = []
        for name in backups {
            let day = name.dropFirst(Self.folderPrefix.count).prefix(8)
            if !days.contains(day), days.count < settings.keepDays {
                days.insert(day)
            } else if name != current.lastPathComponent {
                removals.append(name)
            }
        }
        removals += names.filter { $0.hasSuffix(".partial") && Self.isBackupName(String($0.dropLast(".partial".count))) }
        for name in removals { try FileManager.default.removeItem(at: directory.appendingPathComponent(name)) }
    }

    /// `rampart-YYYYMMDDTHHMMSSZ`.
    static func isBackupName(_ name: String) -> Bool {
        guard name.hasPrefix(folderPrefix) else { return false }
        let stamp = Array(name.utf8.dropFirst(folderPrefix.count))
        guard stamp.count == 16, stamp[8] == UInt8(ascii: "T"), stamp[15] == UInt8(ascii: "Z") else { return false }
        return (stamp[0..<8] + stamp[9..<15]).allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    /// `YYYYMMDDTHHMMSSZ`: the RFC 3339 time without its separators and milliseconds.
    static func stamp(_ date: Date) -> String {
        String(rfc3339(date).prefix(19).filter { $0 != "-" && $0 != ":" }) + "Z"
    }

    static func rfc3339(_ date: Date) -> String {
        WallClock.rfc3339(milliseconds: Int64((date.timeIntervalSince1970 * 1000).rounded(.down)))
    }
}

/// An exclusive lock on a backup directory (`flock` on `.lock`), so that two runs never write
/// or rotate the same directory at once.
struct DirectoryLock {
    private let descriptor: Int32

    init(_ directory: URL) throws {
        descriptor = open(directory.appendingPathComponent(".lock").path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw BackupError("cannot open \(directory.path)/.lock") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw BackupError("another backup is running in \(directory.path)")
        }
    }

    func release() {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
