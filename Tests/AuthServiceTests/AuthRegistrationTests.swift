import Foundation
import NATSKit
import RampartModels
import ServiceKit
import ServicesTestSupport
import SodiumKit
import TenantsService
import TestSupport
import Testing

@testable import AuthService

@Suite("AUTH-1 AUTH-2 passwords: the policy, bcrypt and argon2id")
struct PasswordTests {
    let policy = PasswordPolicy()

    @Test("every failed rule is named")
    func policyRules() {
        let email = EmailAddress("jane.doe@acme.example")
        #expect(policy.violations("Tr0ub4dor&3xkcd!", email: email).isEmpty)
        #expect(policy.violations("short", email: email).contains("at least 12 characters"))
        let all = policy.violations("aaaaaaaaaaaaa", email: email)
        #expect(all == ["an upper-case letter", "a digit", "a symbol"])
        #expect(policy.violations("AAAAAAAAAAAA1!", email: email) == ["a lower-case letter"])
        #expect(policy.violations("Password123!!", email: email) == ["not a common or breached password"])
        #expect(policy.violations("!!Welcome2024", email: email) == ["not a common or breached password"])
        #expect(policy.violations("Jane.Doe-2024!x", email: email) == ["not containing your email address's name"])
        #expect(policy.violations("Tr0ub4dor&3\u{0}xkcd!", email: email).contains("no control characters"))
        #expect(policy.violations(String(repeating: "Aa1!", count: 19), email: email) == ["at most 72 bytes"])
        #expect(
            PasswordPolicy(extraCommon: ["Tr0ub4dor&3xkcd!"]).violations("tr0ub4dor&3XKCD!", email: email) == ["not a common or breached password"]
        )
        #expect(PasswordPolicy.parseList("one\n\nTwo\r\n") == ["one", "two"])
    }

    @Test("the shipped bcrypt cost is 12, configuration cannot go below 10, argon2id is selectable")
    func shippedDefaults() {
        #expect(AuthSettings().passwordAlgorithm == .bcrypt(cost: 12))
        let keys = [
            "RAMPART_AUTH_KEY_ENCRYPTION_KEYS": "k1:" + Base64.encode(randomBytes(32)),
            "RAMPART_MAIL_TOKEN_PUBLIC_KEY": TenantsCluster.mailTokenKeys.currentPublicKey.text,
        ]
        var reader = EnvironmentReader(environment: keys)
        #expect(AuthSettings(reader: &reader).passwordAlgorithm == .bcrypt(cost: 12))
        #expect(reader.problems.isEmpty)
        var low = EnvironmentReader(environment: keys.merging(["RAMPART_AUTH_BCRYPT_COST": "9"]) { $1 })
        _ = AuthSettings(reader: &low)
        #expect(low.problems.count == 1)
        var argon = EnvironmentReader(environment: keys.merging(["RAMPART_AUTH_PASSWORD_HASH": "argon2id"]) { $1 })
        #expect(AuthSettings(reader: &argon).passwordAlgorithm == .argon2id(.interactive))
        // The key-encryption keys and the mail sender's public key are required, and must be keys.
        var none = EnvironmentReader(environment: [:])
        _ = AuthSettings(reader: &none)
        #expect(none.problems == ["RAMPART_AUTH_KEY_ENCRYPTION_KEYS is required", "RAMPART_MAIL_TOKEN_PUBLIC_KEY is required"])
        var bad = EnvironmentReader(environment: ["RAMPART_AUTH_KEY_ENCRYPTION_KEYS": "k1:c2hvcnQ=", "RAMPART_MAIL_TOKEN_PUBLIC_KEY": "m1:c2hvcnQ="])
        _ = AuthSettings(reader: &bad)
        #expect(bad.problems.count == 2, "\(bad.problems)")
        #expect(bad.problems.last?.hasPrefix("RAMPART_MAIL_TOKEN_PUBLIC_KEY must be") == true)
        var reading = EnvironmentReader(environment: keys)
        #expect(AuthSettings(reader: &reading).mailTokenKey == TenantsCluster.mailTokenKeys.currentPublicKey)
    }

    @Test("bcrypt ($2b$, libxcrypt) and argon2id hash, verify, refuse, and ask for a rehash when the settings change")
    func hashing() async throws {
        let bcrypt = try PasswordHasher(algorithm: .bcrypt(cost: 5), threads: 2)
        let hash = try await bcrypt.hash("Tr0ub4dor&3xkcd!")
        #expect(hash.hasPrefix("$2b$05$"))
        #expect(hash.count == 60)
        #expect(try await bcrypt.verify("Tr0ub4dor&3xkcd!", against: hash) == .init(matches: true, needsRehash: false))
        #expect(try await bcrypt.verify("Tr0ub4dor&3xkcd?", against: hash) == .init(matches: false, needsRehash: false))
        #expect(try await bcrypt.verify("Tr0ub4dor&3xkcd!", against: nil) == .init(matches: false, needsRehash: false))
        #expect(try await bcrypt.verify("Tr0ub4dor&3xkcd!", against: "$2b$05$garbage") == .init(matches: false, needsRehash: false))
        #expect(try await bcrypt.hash("Tr0ub4dor&3xkcd!") != hash)  // salted

        // A policy change: the old hash still verifies and is due for replacement.
        let stronger = try PasswordHasher(algorithm: .bcrypt(cost: 6), threads: 1)
        #expect(try await stronger.verify("Tr0ub4dor&3xkcd!", against: hash) == .init(matches: true, needsRehash: true))
        let argon = try PasswordHasher(algorithm: .argon2id(Argon2id(operationsLimit: 2, memoryLimit: 8 << 20)), threads: 1)
        #expect(try await argon.verify("Tr0ub4dor&3xkcd!", against: hash) == .init(matches: true, needsRehash: true))
        let argonHash = try await argon.hash("Tr0ub4dor&3xkcd!")
        #expect(argonHash.hasPrefix("$argon2id$"))
        #expect(try await bcrypt.verify("Tr0ub4dor&3xkcd!", against: argonHash) == .init(matches: true, needsRehash: true))
    }

    @Test("sign-ups hold at most half the hash pool's threads: one more is refused at once, with a retry delay; verifications are never refused")
    func signUpSlots() async throws {
        let hasher = try PasswordHasher(algorithm: .bcrypt(cost: 12), threads: 2)
        #expect(hasher.signUpSlots == 1)
        async let first = hasher.hashForSignUp("Tr0ub4dor&3xkcd!")  // about 0.25 s
        // Its slot taken, however long a loaded machine takes to start it.
        while hasher.signUpsHashing == 0 { try await Task.sleep(for: .milliseconds(1)) }
        let refused = await #expect(throws: RampartError.self) { _ = try await hasher.hashForSignUp("Correct-h0rse-battery!") }
        #expect(refused?.code == .unavailable)
        #expect(refused?.details["retry_after_ms"] != nil)
        #expect(try await hasher.verify("Tr0ub4dor&3xkcd!", against: nil).matches == false)  // a sign-in meanwhile
        #expect(try await first.hasPrefix("$2b$12$"))
        #expect(try await hasher.hashForSignUp("Correct-h0rse-battery!").hasPrefix("$2b$12$"), "the slot is free again")
    }
}

@Suite("AUTH-1 registration: the user and the tenant together, or neither")
struct RegistrationTests {
    static func cluster() async throws -> TenantsCluster {
        try await TenantsCluster.start(settings: TenantsSettings(sagaServices: [.tenants, .auth]), without: [.permissions, .audit, .webhooks])
    }

    func register(
        _ cluster: TenantsCluster,
        email: String,
        password: String = "Tr0ub4dor&3xkcd!",
        name: String = "Jane Doe",
        ip: String = "203.0.113.50"
    )
        async throws -> Rampart_V1_RegisterReply
    {
        var request = Rampart_V1_RegisterRequest()
        request.email = email
        request.password = password
        request.name = name
        request.organization.name = "Initech"
        request.organization.country = "US"
        request.organization.registrationNumber = "94-2404110"
        return try await cluster.call(Subjects.Auth.register, request, ip: ip)
    }

    func count(_ cluster: TenantsCluster, _ sql: String, in service: ServiceName) async throws -> String {
        try await TestPostgres.psql(sql, database: cluster.databases[service]!)
    }

    @Test("a registration makes an active user who owns an active tenant")
    func registers() async throws {
        let cluster = try await Self.cluster()
        let reply = try await register(cluster, email: "Jane@Initech.example")
        #expect(UUID(uuidString: reply.userID) != nil)
        #expect(try await cluster.waitFor(.active, reply.tenantID))
        let user = try await count(cluster, "SELECT email || ' ' || status || ' ' || default_tenant_id FROM users", in: .auth)
        #expect(user == "jane@initech.example active \(reply.tenantID)")
        let hash = try await count(cluster, "SELECT password_hash FROM users", in: .auth)
        #expect(hash.hasPrefix("$2b$04$"))
        let members: Rampart_V1_ListMembersReply = try await cluster.call(
            Subjects.Tenants.listMembers,
            Rampart_V1_ListMembersRequest(),
            tenant: TenantID(reply.tenantID),
            principal: "user:\(reply.userID)"
        )
        #expect(members.members.map(\.email) == ["jane@initech.example"])
        await cluster.stop()
    }

    @Test("refusals leave nothing behind: weak password, taken email, tenants' own refusal")
    func refusals() async throws {
        let cluster = try await Self.cluster()
        let weak = await expectError(.invalidArgument) { _ = try await register(cluster, email: "a@initech.example", password: "password") }
        #expect(weak?.details["password"]?.contains("an upper-case letter") == true)
        #expect(weak?.details["password"]?.contains("not a common or breached password") == true)

        _ = try await register(cluster, email: "taken@initech.example")
        await expectError(.alreadyExists) { _ = try await register(cluster, email: "TAKEN@initech.example", ip: "203.0.113.51") }
        // tenants refuses a disposable address: its answer comes back, and the pending user goes.
        let disposable = await expectError(.invalidArgument) { _ = try await register(cluster, email: "x@mailinator.com", ip: "203.0.113.52") }
        #expect(disposable?.details["owner_email"] != nil)
        #expect(try await count(cluster, "SELECT count(*) FROM users", in: .auth) == "1")
        #expect(try await count(cluster, "SELECT count(*) FROM tenants", in: .tenants) == "1")
        await cluster.stop()
    }

    @Test("hostile input: oversized, null bytes, SQL-ish, wrong shapes get precise 4xx errors and write nothing")
    func hostileInput() async throws {
        let cluster = try await Self.cluster()
        let hostile = [
            (String(repeating: "a", count: 10_000) + "@x.example", "Tr0ub4dor&3xkcd!", "Jane"),
            ("jane\u{0}@initech.example", "Tr0ub4dor&3xkcd!", "Jane"),
            ("jane@initech.example", "Tr0ub4dor&3\u{0}xkcd!", "Jane"),
            ("jane@initech.example", "Tr0ub4dor&3xkcd!", "Jane\u{0}Doe"),
            ("'; DROP TABLE users; --@x.example", "Tr0ub4dor&3xkcd!", "Jane"),
            ("jane@initech.example", "Tr0ub4dor&3xkcd!", String(repeating: "n", count: 201)),
            ("jane@initech.example", "Tr0ub4dor&3xkcd!", ""),
        ]
        for (email, password, name) in hostile {
            await expectError(.invalidArgument) { _ = try await register(cluster, email: email, password: password, name: name) }
        }
        // Not a RegisterRequest at all, and a body over the size limit.
        for body in [[UInt8](repeating: 0xFF, count: 64), [UInt8](repeating: 0x0A, count: 300 * 1024)] {
            var headers = NATSHeaders()
            headers.add(CallHeader.requestID, "req-hostile")
            headers.add(CallHeader.deadline, String(WallClock.milliseconds() + 5000))
            headers.add(CallHeader.clientIP, "203.0.113.60")
            let reply = try await cluster.client.request(body, to: Subjects.Auth.register.subject, headers: headers, timeout: .seconds(5))
            #expect(reply.headers[CallHeader.error] == RampartError.Code.malformedRequest.name)
        }
        #expect(try await count(cluster, "SELECT count(*) FROM users", in: .auth) == "0")
        #expect(try await count(cluster, "SELECT count(*) FROM tenants", in: .tenants) == "0")
        await cluster.stop()
    }
}
