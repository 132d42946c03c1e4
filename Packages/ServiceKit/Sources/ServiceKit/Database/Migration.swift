import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One numbered SQL migration. Its checksum is recorded when it is applied, so an edit to an
/// applied migration is caught at start instead of silently diverging between databases.
public struct Migration: Sendable, Equatable {
    public var version: Int
    public var name: String
    public var sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    public var checksum: String { fingerprint(Array(sql.utf8)) }

    /// Loads `NNNN_name.sql` files from `directory`, sorted by number. A missing directory is an
    /// empty set; a badly named file or a repeated number is an error.
    public static func load(directory: URL) throws -> [Migration] {
        let files: [String]
        do {
            files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            return []
        }
        var migrations: [Migration] = []
        for file in files where file.hasSuffix(".sql") {
            let stem = file.dropLast(4)
            guard let underscore = stem.firstIndex(of: "_"), let version = Int(stem[..<underscore]), version > 0 else {
                throw MigrationError.badFileName(file)
            }
            let sql = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            migrations.append(Migration(version: version, name: String(stem[stem.index(after: underscore)...]), sql: sql))
        }
        migrations.sort { $0.version < $1.version }
        for (previous, next) in zip(migrations, migrations.dropFirst()) where previous.version == next.version {
            throw MigrationError.duplicateVersion(next.version)
        }
        return migrations
    }
}

/// A service's two migration sets: `global` for its `public` schema, `tenant` for each tenant's
/// `t_<id>` schema.
public struct MigrationSet: Sendable {
    public var global: [Migration]
    public var tenant: [Migration]

    public init(global: [Migration] = [], tenant: [Migration] = []) {
        self.global = global
        self.tenant = tenant
    }

    public static let none = MigrationSet()

    /// Loads `global/` and `tenant/` below `directory` (a service's `Migrations` resource).
    public static func load(directory: URL) throws -> MigrationSet {
        MigrationSet(
            global: try Migration.load(directory: directory.appendingPathComponent("global")),
            tenant: try Migration.load(directory: directory.appendingPathComponent("tenant"))
        )
    }
}

public enum MigrationError: Error, CustomStringConvertible, Equatable {
    case badFileName(String)
    case duplicateVersion(Int)
    /// An applied migration's SQL changed since it was applied.
    case checksumMismatch(schema: String, version: Int, name: String)
    /// The database has a migration this build does not know: it was migrated by a newer build.
    case unknownAppliedVersion(schema: String, version: Int)

    public var description: String {
        switch self {
        case .badFileName(let file): "migration file \(file) is not named NNNN_name.sql"
        case .duplicateVersion(let version): "two migrations are numbered \(version)"
        case .checksumMismatch(let schema, let version, let name):
            "migration \(version) (\(name)) in schema \(schema) was edited after it was applied"
        case .unknownAppliedVersion(let schema, let version):
            "schema \(schema) has migration \(version) applied, which this build does not have (a newer build migrated it)"
        }
    }
}
