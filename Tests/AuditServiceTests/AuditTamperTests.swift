import Foundation
import Logging
import RampartModels
import ServiceKit
import ServicesTestSupport
import SodiumKit
import TestSupport
import Testing

@testable import AuditService

@Suite("AUD-5 tamper evidence: verify names the first changed, removed, inserted or reordered event")
struct AuditTamperTests {
    /// A tenant with 20 chained events (stored in two batches), and its store.
    func chain(checkpointEvents: Int = 1000) async throws -> (store: AuditStore, tenant: TenantID, databaseName: String) {
        let fixture = try await AuditFixture.start(checkpointEvents: checkpointEvents)
        let events = fixture.events(1...20)
        try await fixture.store.append(Array(events[0..<8]), to: fixture.chain)
        try await fixture.store.append(Array(events[8...]), to: fixture.chain)
        return (fixture.store, fixture.tenant, fixture.database)
    }

    func tamper(_ sql: String, _ tenant: TenantID, _ database: String) async throws {
        _ = try await TestPostgres.psql("SET search_path TO \(tenant.schemaName); \(sql)", database: database)
    }

    @Test("an untouched log verifies")
    func untouched() async throws {
        let (store, tenant, _) = try await chain()
        let verdict = try await store.verify(.tenant(tenant))
        #expect(verdict == ChainVerdict(verifiedEvents: 20, firstBadPosition: nil, problem: nil))
    }

    @Test("an edited event, or an edited query column, is named")
    func edit() async throws {
        let (store, tenant, database) = try await chain()
        try await tamper("UPDATE audit_events SET actor_id = 'someone-else' WHERE position = 9", tenant, database)
        #expect(try await store.verify(.tenant(tenant)).firstBadPosition == 9)
        try await tamper("UPDATE audit_events SET event = event || '\\x00'::bytea WHERE position = 7", tenant, database)
        let verdict = try await store.verify(.tenant(tenant))
        #expect(verdict.firstBadPosition == 7)
        #expect(verdict.verifiedEvents == 6)
    }

    @Test("a deleted event is named, in the middle or at the end")
    func delete() async throws {
        let (store, tenant, database) = try await chain()
        try await tamper("DELETE FROM audit_events WHERE position = 20", tenant, database)
        #expect(try await store.verify(.tenant(tenant)).firstBadPosition == 20)
        try await tamper("DELETE FROM audit_events WHERE position = 5", tenant, database)
        let verdict = try await store.verify(.tenant(tenant))
        #expect(verdict.firstBadPosition == 5)
        #expect(verdict.problem == "event missing")
    }

    @Test("an inserted event breaks the link after it, even with a correctly computed hash of its own")
    func insert() async throws {
        let (store, tenant, database) = try await chain()
        // Make room at 12 and forge a row there that links correctly to 11.
        try await tamper(
            """
            UPDATE audit_events SET position = position + 1000 WHERE position >= 12;
            UPDATE audit_events SET position = position - 999 WHERE position >= 1012;
            INSERT INTO audit_events (position, id, occurred_at, action, actor_kind, actor_id, actor_email, target_type, target_id,
                ip, outcome, request_id, super_admin, event, previous_hash, hash)
            SELECT 12, gen_random_uuid(), occurred_at, action, actor_kind, actor_id, actor_email, target_type, target_id,
                ip, outcome, request_id, super_admin, event, hash, sha256(hash || event)
            FROM audit_events WHERE position = 11;
            """,
            tenant,
            database
        )
        // The forged row links, but what it hashes is not what its columns say; had the forger
        // made those agree too, the row after it (13) would no longer link.
        #expect(try await store.verify(.tenant(tenant)).firstBadPosition == 12)
    }

    @Test("two swapped events are named at the first of them")
    func swap() async throws {
        let (store, tenant, database) = try await chain()
        try await tamper(
            """
            UPDATE audit_events SET position = 1003 WHERE position = 3;
            UPDATE audit_events SET position = 3 WHERE position = 4;
            UPDATE audit_events SET position = 4 WHERE position = 1003;
            """,
            tenant,
            database
        )
        let verdict = try await store.verify(.tenant(tenant))
        #expect(verdict.firstBadPosition == 3)
        #expect(verdict.problem == "link to the previous event broken")
    }

    @Test("a forger who changes an event and recomputes every hash after it is caught by the signed checkpoints")
    func rewrittenChain() async throws {
        let (store, tenant, database) = try await chain(checkpointEvents: 5)
        #expect(try await store.verify(.tenant(tenant)).isValid)
        #expect(
            try await TestPostgres.psql(
                "SELECT string_agg(position::text, ',' ORDER BY position) FROM \(tenant.schemaName).audit_checkpoints",
                database: database
            ) == "8,20"
        )
        // Change event 12 and rewrite the chain from there, head included: every link holds.
        let rows = try await TestPostgres.psql(
            "SELECT position, encode(event, 'hex'), encode(previous_hash, 'hex') FROM \(tenant.schemaName).audit_events WHERE position >= 12 ORDER BY position",
            database: database
        )
        var previous: [UInt8] = []
        var statements: [String] = []
        for line in rows.split(separator: "\n") {
            let fields = line.split(separator: "|").map(String.init)
            var event = try Rampart_V1_AuditEvent(serializedBytes: bytes(hex: fields[1])!)
            if fields[0] == "12" {
                event.actor.id = "nobody"
                previous = bytes(hex: fields[2])!
            }
            let canonical = try AuditChain.canonical(event)
            let next = AuditChain.link(previous: previous, canonical: canonical)
            statements.append(
                "UPDATE audit_events SET actor_id = '\(event.actor.id)', event = '\\x\(hexString(canonical))', previous_hash = '\\x\(hexString(previous))', hash = '\\x\(hexString(next))' WHERE position = \(fields[0]);"
            )
            previous = next
        }
        statements.append("UPDATE audit_chain_head SET hash = '\\x\(hexString(previous))';")
        try await tamper(statements.joined(separator: "\n"), tenant, database)
        let verdict = try await store.verify(.tenant(tenant))
        #expect(verdict.firstBadPosition == 9)
        #expect(verdict.problem?.contains("rewritten") == true)

        // A forged signature does not help either.
        try await tamper("UPDATE audit_checkpoints SET signature = decode(repeat('ab', 64), 'hex') WHERE position = 20", tenant, database)
        #expect(try await store.verify(.tenant(tenant)).problem == "checkpoint at 20 has no valid signature")
    }
}

@Suite("AUD-5 the checkpoint keys are configuration, checked at start")
struct AuditSettingsTests {
    func read(_ environment: [String: String]) -> (AuditSettings, [String]) {
        var reader = EnvironmentReader(environment: environment)
        let settings = AuditSettings(reader: &reader)
        return (settings, reader.problems)
    }

    @Test(
        "issue 26, finding 14: the newest events cut with their checkpoints and the head set back are named, online and offline, by the published checkpoint"
    )
    func tailTruncation() async throws {
        let fixture = try await AuditFixture.start(checkpointEvents: 5, publishing: true)
        for batch in [1...5, 6...10, 11...15, 16...20] { try await fixture.store.append(fixture.events(batch), to: fixture.chain) }
        #expect(try await fixture.store.publishLatestCheckpoint(fixture.chain, signedUpTo: 20, published: nil) == 20)
        #expect(try await fixture.store.publishLatestCheckpoint(fixture.chain, signedUpTo: 20, published: 20) == 20, "published once")
        #expect(try await fixture.store.verify(fixture.chain).isValid)
        #expect(fixture.verifyOffline(try await fixture.export(.jsonl).bytes).isValid)

        // Someone who can write audit's database removes the last five events, their checkpoints,
        // and sets the head back: the chain left behind is whole and signed.
        try await fixture.tamper(
            """
            DELETE FROM audit_events WHERE position > 15; DELETE FROM audit_checkpoints WHERE position > 15;
            UPDATE audit_chain_head SET position = 15, hash = (SELECT hash FROM audit_events WHERE position = 15);
            """
        )
        var databaseAlone = fixture.store
        databaseAlone.published = nil
        #expect(try await databaseAlone.verify(fixture.chain).isValid, "without the published copy, the cut goes unseen")
        let verdict = try await fixture.store.verify(fixture.chain)
        #expect(verdict.firstBadPosition == 16, "\(verdict)")
        #expect(verdict.problem == "events missing: a checkpoint signed position 20", "\(verdict)")
        let offline = fixture.verifyOffline(try await fixture.export(.jsonl).bytes)
        #expect(offline.firstBadPosition == 16 && offline.problem == verdict.problem, "\(offline)")
    }

    @Test("a signing key and earlier verifying keys are read; anything else is a problem")
    func keys() throws {
        let seed = randomBytes(32)
        let earlier = SigningKey.generate()
        let (settings, problems) = read([
            "RAMPART_AUDIT_SIGNING_KEY": "k2:" + Base64.encode(seed),
            "RAMPART_AUDIT_VERIFYING_KEYS": "k1:" + Base64.encode(earlier.publicKey),
        ])
        #expect(problems.isEmpty)
        #expect(settings.signingKeyID == "k2")
        #expect(settings.signingKey.publicKey == (try SigningKey(seed: seed)).publicKey)
        #expect(settings.signatures.publicKeys["k1"] == earlier.publicKey)

        #expect(read([:]).1 == ["RAMPART_AUDIT_SIGNING_KEY is required"])
        for bad in [
            "k2", "k2:" + Base64.encode(randomBytes(16)), "bad id:" + Base64.encode(seed), "a:\(Base64.encode(seed)),b:\(Base64.encode(seed))",
        ] {
            #expect(read(["RAMPART_AUDIT_SIGNING_KEY": bad]).1.count == 1, "\(bad)")
        }
        let badVerifying = read([
            "RAMPART_AUDIT_SIGNING_KEY": "k2:" + Base64.encode(seed), "RAMPART_AUDIT_VERIFYING_KEYS": "k1:" + Base64.encode(randomBytes(8)),
        ])
        #expect(badVerifying.1.count == 1)
    }
}
