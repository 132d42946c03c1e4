import Foundation
import Logging
import NATSKit
import PostgresNIO
import RampartModels
import ServiceKit
import SodiumKit
import TestSupport

@testable import AuditService

/// audit's store on a database of its own with one provisioned tenant, without the service:
/// for tests that tamper with rows, move time, or page through exports.
package struct AuditFixture {
    package let store: AuditStore
    package let tenant: TenantID
    package let database: String

    package var chain: AuditStore.Chain { .tenant(tenant) }
    package var publicKeys: [String: [UInt8]] { [store.settings.signingKeyID: store.settings.signingKey.publicKey] }

    /// One NATS connection for the fixtures that publish, open as long as the test process (as
    /// their databases are): a connection dropped without a drain when a test ends would close
    /// under nats.c's threads while they still use it.
    private static let checkpointsJetStream = Task {
        let connection = try await NATSConnection.connect(
            NATSConfiguration(servers: [try await TestNATS.url()], name: "audit"),
            logger: quietLogger()
        )
        let jetStream = try connection.jetStream()
        try await jetStream.ensureStream(PublishedCheckpoints.stream)
        return jetStream
    }

    /// `publishing`: checkpoints are published to JetStream too (the shared test server), as
    /// the service does.
    package static func start(checkpointEvents: Int = 1000, publishing: Bool = false) async throws -> AuditFixture {
        let name = try await TestPostgres.createDatabase(prefix: "rampart_audit")
        let database = try Database(
            .init(host: TestPostgres.server.host, port: TestPostgres.server.port, user: name, password: name, database: name),
            logger: quietLogger()
        )
        Task { await database.client.run() }  // lives as long as the test process
        try await database.migrate(AuditMigrations.set)
        let tenant = TenantID.random()
        try await database.provision(tenant, AuditMigrations.set)
        let settings = AuditSettings(signingKey: .generate(), checkpointEvents: checkpointEvents)
        var store = AuditStore(database: database, settings: settings, logger: quietLogger())
        if publishing { store.published = PublishedCheckpoints(jetStream: try await Self.checkpointsJetStream.value) }
        return AuditFixture(store: store, tenant: tenant, database: name)
    }

    /// Events `indices`, a minute apart, each changed by `configure`.
    /// Events of the fixture's tenant, or of `other`.
    package func events(
        _ indices: ClosedRange<Int>,
        of other: TenantID? = nil,
        _ configure: (inout Rampart_V1_AuditEvent, Int) -> Void = { _, _ in }
    ) -> [Rampart_V1_AuditEvent] {
        indices.map { index in
            var event = Rampart_V1_AuditEvent()
            event.id = UUID().uuidString
            event.tenantID = (other ?? tenant).hex
            event.occurredAtMs = 1_700_000_000_000 + Int64(index) * 60_000
            event.action = AuditAction.permissionChanged.rawValue
            event.actor.kind = .user
            event.actor.id = "admin-\(index)"
            event.target.type = "user"
            event.target.id = "user-\(index)"
            event.outcome = .success
            configure(&event, index)
            return event
        }
    }

    /// Runs SQL in the tenant's schema, as someone with database access would.
    package func tamper(_ sql: String) async throws {
        _ = try await TestPostgres.psql("SET search_path TO \(tenant.schemaName); \(sql)", database: database)
    }

    /// A whole export, chunk after chunk, and how many chunks it took.
    package func export(
        _ format: Rampart_V1_AuditExportFormat,
        _ filter: Rampart_V1_AuditFilter = .init(),
        rowsPerChunk: Int = AuditStore.exportRowsPerChunk
    ) async throws -> (bytes: [UInt8], chunks: Int) {
        var request = Rampart_V1_AuditExportRequest()
        request.format = format
        request.filter = filter
        var bytes: [UInt8] = []
        var chunks = 0
        repeat {
            let reply = try await store.export(chain, request, rowsPerChunk: rowsPerChunk)
            bytes += reply.chunk
            chunks += 1
            request.cursor = reply.nextCursor
        } while !request.cursor.isEmpty
        return (bytes, chunks)
    }

    /// What `rampart-audit verify` says of `export`.
    package func verifyOffline(_ export: [UInt8], publicKeys: [String: [UInt8]]? = nil) -> ChainVerdict {
        var verifier = AuditExportVerifier(publicKeys: publicKeys ?? self.publicKeys)
        for line in export.split(separator: UInt8(ascii: "\n")) where !verifier.feed(line) { break }
        return verifier.finish()
    }
}
