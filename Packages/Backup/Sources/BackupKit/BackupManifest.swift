import Foundation
import SodiumKit

/// `manifest.json` of a backup: what it holds and how to check it. `manifest.json.mac` beside it
/// authenticates the manifest's exact bytes under the backup key, so a file cannot be dropped
/// from the backup, nor a checksum changed, without restore noticing.
public struct BackupManifest: Codable, Equatable, Sendable {
    public struct Database: Codable, Equatable, Sendable {
        public var name: String
        /// The role that owned the database; restore makes it the owner again.
        public var owner: String
        public var file: String
        public var bytes: Int64
        /// SHA-256 of the encrypted file, hex: checkable without the key (`sha256sum`).
        public var sha256: String
    }

    public static let currentFormat = "rampart-backup-1"
    static let fileName = "manifest.json"
    static let macFileName = "manifest.json.mac"
    static let macPurpose = "rampart-backup manifest"

    public var format = BackupManifest.currentFormat
    public var createdAt: String
    public var keyID: String
    public var postgresVersion: String
    public var databases: [Database]

    enum CodingKeys: String, CodingKey {
        case format
        case createdAt = "created_at"
        case keyID = "key_id"
        case postgresVersion = "postgres_version"
        case databases
    }

    func write(to folder: URL, keys: KeyRing) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let bytes = Array(try encoder.encode(self)) + [UInt8(ascii: "\n")]
        let mac = try keys.keyedHash(bytes, purpose: Self.macPurpose, keyID: keyID)
        try write(bytes, to: folder.appendingPathComponent(Self.fileName))
        try write(Array((hexString(mac) + "\n").utf8), to: folder.appendingPathComponent(Self.macFileName))
    }

    private func write(_ bytes: [UInt8], to url: URL) throws {
        guard FileManager.default.createFile(atPath: url.path, contents: Data(bytes), attributes: [.posixPermissions: 0o600]) else {
            throw BackupError("cannot write \(url.path)")
        }
    }

    /// Reads and authenticates a backup's manifest; refuses one the keys cannot vouch for.
    static func read(from folder: URL, keys: KeyRing) throws -> BackupManifest {
        guard let bytes = FileManager.default.contents(atPath: folder.appendingPathComponent(fileName).path),
            let macText = FileManager.default.contents(atPath: folder.appendingPathComponent(macFileName).path)
        else { throw BackupError("\(folder.path) is not a backup: \(fileName) or \(macFileName) is missing") }
        let manifest: BackupManifest
        do {
            manifest = try JSONDecoder().decode(BackupManifest.self, from: bytes)
        } catch {
            throw BackupError("\(fileName) is not a backup manifest: \(error)")
        }
        guard manifest.format == currentFormat else { throw BackupError("backup format \(manifest.format.debugDescription) is not \(currentFormat)") }
        guard keys.keyIDs.contains(manifest.keyID) else {
            throw BackupError("the backup was sealed with key \(manifest.keyID.debugDescription), which RAMPART_BACKUP_KEYS does not hold")
        }
        let expected = try keys.keyedHash(Array(bytes), purpose: macPurpose, keyID: manifest.keyID)
        let given = SodiumKit.bytes(hex: String(decoding: macText, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? []
        guard constantTimeEquals(expected, given) else {
            throw BackupError(
                "\(fileName) failed authentication: the manifest was changed, or key \(manifest.keyID) of RAMPART_BACKUP_KEYS is not the key that made it"
            )
        }
        for database in manifest.databases {
            guard PostgresConnection.isPlainIdentifier(database.name), PostgresConnection.isPlainIdentifier(database.owner),
                database.file == SealedDump.fileName(database.name)
            else { throw BackupError("\(fileName) names an unexpected database, owner or file") }
        }
        return manifest
    }
}

extension SealedDump {
    static func fileName(_ database: String) -> String { "\(database).dump.sealed" }
}
