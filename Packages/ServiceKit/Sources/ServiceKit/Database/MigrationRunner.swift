import Logging
import PostgresNIO

/// Applies migrations to one schema, each in its own transaction, under a PostgreSQL advisory
/// lock so that replicas starting together apply each migration exactly once.
struct MigrationRunner {
    let client: PostgresClient
    let logger: Logger

    /// `schema` is `public` or a `t_<32 hex>` name built from a `TenantID`; nothing else reaches
    /// here, and it is checked again because it is spliced into SQL.
    func migrate(schema: String, _ migrations: [Migration]) async throws {
        precondition(Self.isSafeSchemaName(schema), "schema name must be public or t_<32 hex>")
        for (previous, next) in zip(migrations, migrations.dropFirst()) where next.version <= previous.version {
            throw MigrationError.misnumbered(version: next.version)
        }
        let quoted = "\"\(schema)\""
        try await client.withConnection { connection in
            // Session-level lock on this one connection; a second process waits here, then finds
            // everything applied.
            try await connection.query("SELECT pg_advisory_lock(hashtext(\("rampart.migrations." + schema)))", logger: logger)
            do {
                try await apply(migrations, schema: schema, quoted: quoted, on: connection)
                try await connection.query("SELECT pg_advisory_unlock(hashtext(\("rampart.migrations." + schema)))", logger: logger)
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(hashtext(\("rampart.migrations." + schema)))", logger: logger)
                throw error
            }
        }
    }

    private func apply(_ migrations: [Migration], schema: String, quoted: String, on connection: PostgresConnection) async throws {
        try await connection.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(quoted)"), logger: logger)
        try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    CREATE TABLE IF NOT EXISTS \(quoted).rampart_migrations (
                        version integer PRIMARY KEY,
                        name text NOT NULL,
                        checksum text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now()
                    )
                    """
            ),
            logger: logger
        )
        if schema == "public" {
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS public.rampart_tenant_schemas (
                    tenant_id text PRIMARY KEY CHECK (tenant_id ~ '^[0-9a-f]{32}$'),
                    schema_name text NOT NULL UNIQUE CHECK (schema_name = 't_' || tenant_id),
                    provisioned_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                logger: logger
            )
            // Tenants whose schema was dropped: a late or redelivered tenant.created for one of
            // them must not bring the schema back.
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS public.rampart_deleted_tenants (
                    tenant_id text PRIMARY KEY CHECK (tenant_id ~ '^[0-9a-f]{32}$'),
                    deleted_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                logger: logger
            )
        }

        var applied: [Int: String] = [:]
        let rows = try await connection.query(PostgresQuery(unsafeSQL: "SELECT version, checksum FROM \(quoted).rampart_migrations"), logger: logger)
        for try await (version, checksum) in rows.decode((Int, String).self) {
            applied[version] = checksum
        }
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        for version in applied.keys.sorted() where known[version] == nil {
            throw MigrationError.unknownAppliedVersion(schema: schema, version: version)
        }

        for migration in migrations {
            if let checksum = applied[migration.version] {
                guard checksum == migration.checksum else {
                    throw MigrationError.checksumMismatch(schema: schema, version: migration.version, name: migration.name)
                }
                continue
            }
            try await connection.withTransaction(logger: logger) { transaction in
                try await transaction.query(PostgresQuery(unsafeSQL: "SET LOCAL search_path TO \(quoted)"), logger: logger)
                for statement in splitSQLStatements(migration.sql) {
                    try await transaction.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await transaction.query(
                    PostgresQuery(
                        unsafeSQL: "INSERT INTO \(quoted).rampart_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        binds: try Self.binds(migration)
                    ),
                    logger: logger
                )
            }
            logger.info("applied migration", metadata: ["schema": "\(schema)", "version": "\(migration.version)", "name": "\(migration.name)"])
        }
    }

    private static func binds(_ migration: Migration) throws -> PostgresBindings {
        var binds = PostgresBindings()
        binds.append(migration.version)
        binds.append(migration.name)
        binds.append(migration.checksum)
        return binds
    }

    static func isSafeSchemaName(_ schema: String) -> Bool {
        if schema == "public" { return true }
        let utf8 = Array(schema.utf8)
        return utf8.count == 34 && schema.hasPrefix("t_")
            && utf8.dropFirst(2).allSatisfy {
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
            }
    }
}
