import Logging
import NIOSSL
public import PostgresNIO
public import RampartModels
import ServiceLifecycle
import Synchronization

/// A service's PostgreSQL: the pooled `PostgresClient` (a `Service`: it works only while its
/// `run()` is scheduled in the service group) and the migrations of its two schema sets.
public final class Database: Sendable {
    public let client: PostgresClient
    let logger: Logger
    /// Tenants found provisioned, and when.
    private let provisioned = Mutex<[TenantID: ContinuousClock.Instant]>([:])
    static let provisionedMemory = Duration.seconds(5)
    static let maximumRemembered = 100_000

    public init(_ settings: ServiceConfiguration.Postgres, logger: Logger) throws {
        let tls: PostgresClient.Configuration.TLS
        switch settings.tls {
        case .disable:
            tls = .disable
        case .prefer, .require:
            var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
            if let caFile = settings.caFile {
                tlsConfiguration.trustRoots = .file(caFile)
            }
            tls = settings.tls == .prefer ? .prefer(tlsConfiguration) : .require(tlsConfiguration)
        }
        var configuration = PostgresClient.Configuration(
            host: settings.host,
            port: settings.port,
            username: settings.user,
            password: settings.password,
            database: settings.database,
            tls: tls
        )
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.maximumConnections = 20
        // PostgresNIO schedules a keep-alive timer (a task group and a dispatch timer) each time a
        // connection goes back to the pool, and cancels it at the next query: a tenth of a
        // service's CPU under load. Keep-alive only pings connections idle for 30 s, and the
        // pool closes those idle for 60 s (`connectionIdleTimeout`, there being no minimum)
        // anyway, so no connection is kept long enough for a proxy or firewall to forget it.
        configuration.options.keepAliveBehavior = nil
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
    }

    /// True when a trivial query answers within `timeout`.
    public func isReachable(timeout: Duration = .seconds(1)) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                (try? await self.client.query("SELECT 1", logger: self.logger)) != nil
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    /// Runs the global migrations in `public`, then the tenant migrations in the schema of every
    /// tenant this service has provisioned.
    public func migrate(_ migrations: MigrationSet) async throws {
        let runner = MigrationRunner(client: client, logger: logger)
        try await runner.migrate(schema: "public", migrations.global)
        for tenant in try await provisionedTenants() {
            try await runner.migrate(schema: tenant.schemaName, migrations.tenant)
        }
    }

    /// Creates and migrates `tenant`'s schema and records it. Idempotent: a redelivered
    /// provisioning event is a no-op.
    public func provision(_ tenant: TenantID, _ migrations: MigrationSet) async throws {
        let runner = MigrationRunner(client: client, logger: logger)
        try await runner.migrate(schema: tenant.schemaName, migrations.tenant)
        try await client.query(
            """
            INSERT INTO public.rampart_tenant_schemas (tenant_id, schema_name) VALUES (\(tenant.hex), \(tenant.schemaName))
            ON CONFLICT (tenant_id) DO NOTHING
            """,
            logger: logger
        )
    }

    /// `query` on a pooled connection. Here, and in `withConnection` and `transaction`, a
    /// tenant's schema that is not there fails as `RampartError.noSuchTenant`, as a request
    /// before provisioning does: a tenant found provisioned is remembered for a few seconds
    /// (`isProvisioned`), and another replica may delete it meanwhile.
    @discardableResult
    public func query(_ query: PostgresQuery) async throws -> PostgresRowSequence {
        try await tenantChecked { try await client.query(query, logger: logger) }
    }

    /// `body` with one pooled connection, for reads that must see the same snapshot in turn.
    public func withConnection<Result>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await tenantChecked { try await client.withConnection(body) }
    }

    /// Runs `body` in a transaction, rethrowing its own error as it is: PostgresNIO wraps it in
    /// a `PostgresTransactionError`, which would turn a precise `RampartError` into an internal one.
    public func transaction<Result>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await tenantChecked {
            do {
                return try await client.withTransaction(logger: logger, isolation: isolation, body)
            } catch let error as PostgresTransactionError {
                if let closureError = error.closureError { throw closureError }
                throw error
            }
        }
    }

    private func tenantChecked<Result>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> sending Result
    ) async throws -> sending Result {
        do {
            return try await body()
        } catch let error as PSQLError where error.isMissingTenantSchema {
            logger.warning("tenant schema missing", metadata: ["error": "\(loggable(error))"])
            throw RampartError.noSuchTenant
        }
    }

    /// Drops `tenant`'s schema and everything in it, and remembers the tenant as deleted so it
    /// is never provisioned again. Idempotent.
    public func deprovision(_ tenant: TenantID) async throws {
        try await transaction { transaction in
            try await transaction.query("DROP SCHEMA IF EXISTS \(schema: tenant) CASCADE", logger: logger)
            try await transaction.query("DELETE FROM public.rampart_tenant_schemas WHERE tenant_id = \(tenant.hex)", logger: logger)
            try await transaction.query(
                "INSERT INTO public.rampart_deleted_tenants (tenant_id) VALUES (\(tenant.hex)) ON CONFLICT (tenant_id) DO NOTHING",
                logger: logger
            )
        }
        _ = provisioned.withLock { $0.removeValue(forKey: tenant) }
    }

    /// Whether `tenant` was deprovisioned here (its ID is never provisioned again).
    public func isDeleted(_ tenant: TenantID) async throws -> Bool {
        let rows = try await client.query("SELECT 1 FROM public.rampart_deleted_tenants WHERE tenant_id = \(tenant.hex)", logger: logger)
        for try await _ in rows { return true }
        return false
    }

    /// Whether `tenant`'s schema exists here, fully migrated: until then its tables may lack
    /// columns. A yes is remembered for `provisionedMemory`, sparing the lookup on every request:
    /// a tenant stays provisioned until its deletion drops the schema, and a query on a dropped
    /// schema fails as `RampartError.noSuchTenant` (`query`), as it would before provisioning.
    public func isProvisioned(_ tenant: TenantID) async throws -> Bool {
        if let seen = provisioned.withLock({ $0[tenant] }), ContinuousClock.now - seen < Self.provisionedMemory { return true }
        let rows = try await client.query("SELECT 1 FROM public.rampart_tenant_schemas WHERE tenant_id = \(tenant.hex)", logger: logger)
        for try await _ in rows {
            provisioned.withLock { seen in
                if seen.count >= Self.maximumRemembered { seen.removeAll(keepingCapacity: true) }
                seen[tenant] = .now
            }
            return true
        }
        return false
    }

    /// The call's tenant, once its schema here is ready: a handler's first step on tenant data.
    public func provisionedTenant(of call: CallContext) async throws -> TenantID {
        let tenant = try call.requireTenant()
        guard try await isProvisioned(tenant) else { throw RampartError(.failedPrecondition, "the tenant is not ready") }
        return tenant
    }

    public func provisionedTenants() async throws -> [TenantID] {
        let rows = try await client.query("SELECT tenant_id FROM public.rampart_tenant_schemas ORDER BY tenant_id", logger: logger)
        var tenants: [TenantID] = []
        for try await (id) in rows.decode(String.self) {
            // The column's CHECK admits only 32 hex digits, so this cannot fail short of tampering.
            guard let tenant = TenantID(id) else { throw RampartError(.internal, "corrupt tenant registry row") }
            tenants.append(tenant)
        }
        return tenants
    }
}

extension PSQLError {
    /// The SQLSTATE the server answered with, e.g. "23505" for a unique violation.
    public var sqlState: String? { serverInfo?[.sqlState] }

    /// A tenant's schema, or a table in it, that is not there: never provisioned in this
    /// database, or dropped by a deletion since. PostgreSQL names the schema-qualified relation
    /// (`relation "t_<hex>.members" does not exist`) or the schema in its message.
    var isMissingTenantSchema: Bool {
        guard sqlState == "42P01" || sqlState == "3F000", let message = serverInfo?[.message] else { return false }
        return message.split(separator: "\"").contains { quoted in
            let schema = quoted.prefix { $0 != "." }
            return schema.hasPrefix("t_") && schema.count == 34 && TenantID(String(schema.dropFirst(2))) != nil
        }
    }
}

/// The quoted name of a tenant's schema, for the one place SQL is built from a string: the
/// schema name, derived only from a validated `TenantID` (32 hex digits), never from user text.
public func quotedSchema(_ tenant: TenantID) -> String {
    "\"" + tenant.schemaName + "\""
}

extension PostgresQuery.StringInterpolation {
    /// A tenant's schema, quoted, in the SQL text itself: its name is built only from a
    /// validated `TenantID` (32 hex digits), so nothing a caller sent reaches the SQL this way.
    public mutating func appendInterpolation(schema tenant: TenantID) {
        appendInterpolation(unescaped: quotedSchema(tenant))
    }
}

extension PostgresRowSequence {
    /// The first row as `columns`, or nil when there is none: what a lookup by key answers.
    public func first<each Column: PostgresDecodable & Sendable>(decoding columns: (repeat each Column).Type) async throws -> (repeat each Column)? {
        for try await row in decode(columns) { return row }
        return nil
    }

    /// The first row's one column, or nil when there is none (a pack of one is not a tuple).
    public func first<Column: PostgresDecodable & Sendable>(decoding column: Column.Type) async throws -> Column? {
        for try await value in decode(column) { return value }
        return nil
    }
}
