import SodiumKit

/// One numbered SQL migration, compiled into its service (`<Name>Migrations`), so that the
/// executable alone carries its schema. Its checksum is recorded when it is applied, so an edit
/// to an applied migration is caught at start instead of silently diverging between databases.
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
}

public enum MigrationError: Error, CustomStringConvertible, Equatable {
    /// A set whose numbers do not increase: `version` repeats or comes after a higher one.
    case misnumbered(version: Int)
    /// An applied migration's SQL changed since it was applied.
    case checksumMismatch(schema: String, version: Int, name: String)
    /// The database has a migration this build does not know: it was migrated by a newer build.
    case unknownAppliedVersion(schema: String, version: Int)

    public var description: String {
        switch self {
        case .misnumbered(let version): "migration \(version) is numbered out of order: each set's numbers must increase"
        case .checksumMismatch(let schema, let version, let name):
            "migration \(version) (\(name)) in schema \(schema) was edited after it was applied"
        case .unknownAppliedVersion(let schema, let version):
            "schema \(schema) has migration \(version) applied, which this build does not have (a newer build migrated it)"
        }
    }
}
