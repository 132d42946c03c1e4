import RampartModels
public import ServiceKit
public import SodiumKit

/// What `rampart-backup` and `rampart-restore` read from their environment. The keys come from
/// configuration only: a backup holds their IDs, never the keys.
public struct BackupSettings: Sendable {
    /// Where backups are written, one folder each.
    public var directory: String
    /// `RAMPART_BACKUP_KEYS`: the first key seals new backups; every key opens the backups it
    /// sealed, so the key can rotate while older backups stay restorable.
    public var keys: KeyRing
    /// How many days keep their newest backup.
    public var keepDays: Int
    public var databases: [String]
    public var postgres: PostgresConnection

    /// The databases of the services that have one (`rampart_auth`, …).
    public static let serviceDatabases = ServiceName.allCases.filter(ServiceConfiguration.ownsDatabase).map(\.databaseName)

    public init(directory: String, keys: KeyRing, keepDays: Int = 30, databases: [String] = serviceDatabases, postgres: PostgresConnection) {
        self.directory = directory
        self.keys = keys
        self.keepDays = keepDays
        self.databases = databases
        self.postgres = postgres
    }

    public static func fromEnvironment(_ environment: [String: String]) throws(ConfigurationError) -> BackupSettings {
        var reader = EnvironmentReader(environment: environment)
        let settings = BackupSettings(reader: &reader)
        try reader.validate()
        return settings
    }

    /// The settings as `reader` finds them; its problems say what is missing or wrong.
    public init(reader: inout EnvironmentReader) {
        let directory = reader.requiredString("backup.dir")
        let keys = reader.keyRing("backup.keys")
        let keepDays = reader.int("backup.keep-days", default: 30, range: 1...3650)
        let databases = reader.list("backup.databases", default: Self.serviceDatabases)
        for name in databases where !PostgresConnection.isPlainIdentifier(name) {
            reader.problem("RAMPART_BACKUP_DATABASES: \(name.debugDescription) is not a database name of a-z, 0-9 and _")
        }
        if Set(databases).count != databases.count { reader.problem("RAMPART_BACKUP_DATABASES names a database twice") }
        let postgres = PostgresConnection(
            host: reader.string("backup.postgres.host", default: "127.0.0.1"),
            port: reader.int("backup.postgres.port", default: 5432, range: 1...65535),
            user: reader.string("backup.postgres.user", default: "postgres"),
            password: reader.optionalString("backup.postgres.password", secret: true),
            sslMode: reader.choice("backup.postgres.tls", default: .prefer),
            sslRootCertificate: reader.optionalString("backup.postgres.tls.ca")
        )
        self.init(directory: directory, keys: keys, keepDays: keepDays, databases: databases, postgres: postgres)
    }
}
