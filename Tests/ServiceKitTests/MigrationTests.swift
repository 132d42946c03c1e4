import Foundation
import PostgresNIO
import RampartModels
import ServiceKit
import TestSupport
import Testing

let firstMigrations = MigrationSet(
    global: [
        Migration(version: 1, name: "widgets", sql: "CREATE TABLE widgets (id bigserial PRIMARY KEY, name text NOT NULL);"),
        Migration(
            version: 2,
            name: "widget_audit",
            sql: """
                ALTER TABLE widgets ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
                CREATE FUNCTION widget_count() RETURNS bigint AS $$ SELECT count(*) FROM widgets; $$ LANGUAGE sql;
                """
        ),
    ],
    tenant: [Migration(version: 1, name: "boards", sql: "CREATE TABLE boards (id bigserial PRIMARY KEY, title text NOT NULL);")]
)

@Suite("Migrations against a real PostgreSQL")
struct MigrationTests {
    @Test("migrations apply once; running them again is a no-op")
    func idempotent() async throws {
        let settings = try await freshPostgres()
        try await withDatabase(settings) { database in
            try await database.migrate(firstMigrations)
            try await database.migrate(firstMigrations)
        }
        let applied = try await TestPostgres.psql(
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM public.rampart_migrations",
            database: settings.database
        )
        #expect(applied == "1,2")
        #expect(try await TestPostgres.psql("SELECT widget_count()", database: settings.database) == "0")
    }

    @Test("two processes migrating at once apply each migration exactly once")
    func concurrentStart() async throws {
        let settings = try await freshPostgres()
        // A slow first migration widens the window in which the two would collide.
        let slow = {
            var slow = firstMigrations
            slow.global[0].sql = "SELECT pg_sleep(0.3); " + slow.global[0].sql
            return slow
        }()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    try await withDatabase(settings) { database in try await database.migrate(slow) }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await TestPostgres.psql("SELECT count(*) FROM public.rampart_migrations", database: settings.database) == "2")
    }

    @Test("a failing migration leaves nothing behind, and the next run applies it once fixed")
    func failingMigrationRollsBack() async throws {
        let settings = try await freshPostgres()
        var broken = firstMigrations
        broken.global[1].sql = "ALTER TABLE widgets ADD COLUMN created_at timestamptz; SELECT no_such_function();"
        await #expect(throws: (any Error).self) {
            try await withDatabase(settings) { database in try await database.migrate(broken) }
        }
        #expect(try await TestPostgres.psql("SELECT count(*) FROM public.rampart_migrations", database: settings.database) == "1")
        let column = try await TestPostgres.psql(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'widgets' AND column_name = 'created_at'",
            database: settings.database
        )
        #expect(column == "0")
        try await withDatabase(settings) { database in try await database.migrate(firstMigrations) }
        #expect(try await TestPostgres.psql("SELECT count(*) FROM public.rampart_migrations", database: settings.database) == "2")
    }

    @Test("an applied migration that was edited stops the start")
    func checksumMismatch() async throws {
        let settings = try await freshPostgres()
        try await withDatabase(settings) { database in try await database.migrate(firstMigrations) }
        var edited = firstMigrations
        edited.global[0].sql += " -- edited"
        await #expect(throws: MigrationError.checksumMismatch(schema: "public", version: 1, name: "widgets")) {
            try await withDatabase(settings) { database in try await database.migrate(edited) }
        }
    }

    @Test("TEN-1 a tenant gets its own schema with the tenant migrations, provisioned idempotently")
    func tenantSchemas() async throws {
        let settings = try await freshPostgres()
        let tenantA = TenantID.random()
        let tenantB = TenantID.random()
        try await withDatabase(settings) { database in
            try await database.migrate(firstMigrations)
            try await database.provision(tenantA, firstMigrations)
            try await database.provision(tenantA, firstMigrations)  // a redelivered event
            try await database.provision(tenantB, firstMigrations)
            #expect(Set(try await database.provisionedTenants()) == [tenantA, tenantB])
            #expect(try await database.isProvisioned(tenantA))
            #expect(try await !database.isProvisioned(TenantID.random()))
            // Data written in A's schema is not in B's: physically separate tables.
            try await database.query("INSERT INTO \(schema: tenantA).boards (title) VALUES ('a')")
        }
        #expect(try await TestPostgres.psql("SELECT count(*) FROM \(quotedSchema(tenantA)).boards", database: settings.database) == "1")
        #expect(try await TestPostgres.psql("SELECT count(*) FROM \(quotedSchema(tenantB)).boards", database: settings.database) == "0")
        #expect(try await TestPostgres.psql("SELECT count(*) FROM public.rampart_tenant_schemas", database: settings.database) == "2")

        // A yes is remembered (the registry row is not read again), but not past the
        // deprovisioning done here.
        let gone = TenantID.random()
        try await withDatabase(settings) { database in
            try await database.provision(gone, firstMigrations)
            #expect(try await database.isProvisioned(gone))
            _ = try await TestPostgres.psql(
                "DELETE FROM public.rampart_tenant_schemas WHERE tenant_id = '\(gone.hex)'",
                database: settings.database
            )
            #expect(try await database.isProvisioned(gone))
            try await database.deprovision(gone)
            #expect(try await !database.isProvisioned(gone))
        }

        // A tenant migration added later reaches every existing tenant at the next start.
        var later = firstMigrations
        later.tenant.append(Migration(version: 2, name: "board_color", sql: "ALTER TABLE boards ADD COLUMN color text;"))
        try await withDatabase(settings) { database in try await database.migrate(later) }
        for tenant in [tenantA, tenantB] {
            #expect(
                try await TestPostgres.psql("SELECT count(*) FROM \(quotedSchema(tenant)).rampart_migrations", database: settings.database) == "2"
            )
        }
    }

    @Test("a set numbered twice or out of order is refused before anything is applied")
    func misnumbered() async throws {
        let settings = try await freshPostgres()
        for versions in [[1, 1], [2, 1]] {
            let set = MigrationSet(global: versions.map { Migration(version: $0, name: "v\($0)", sql: "CREATE TABLE t\($0) (id int);") })
            try await withDatabase(settings) { database in
                await #expect(throws: MigrationError.misnumbered(version: versions[1])) { try await database.migrate(set) }
            }
        }
        #expect(try await TestPostgres.psql("SELECT count(*) FROM pg_tables WHERE tablename LIKE 't_'", database: settings.database) == "0")
    }
}
