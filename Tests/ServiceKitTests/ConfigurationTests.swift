import RampartModels
import ServiceKit
import Testing

@Suite("Configuration from the environment")
struct ConfigurationTests {
    @Test("defaults need no variable at all")
    func defaults() throws {
        let configuration = try ServiceConfiguration.fromEnvironment(.auth, environment: [:])
        #expect(configuration.nats.servers == ["nats://127.0.0.1:4222"])
        #expect(configuration.postgres?.database == "rampart_auth")
        #expect(configuration.postgres?.user == "rampart_auth")
        #expect(configuration.ops.port == 9101)
        #expect(configuration.publicHTTP == nil)
        let rateLimit = try ServiceConfiguration.fromEnvironment(.rateLimit, environment: [:])
        #expect(rateLimit.postgres == nil)
        #expect(rateLimit.nats.name == "rate-limit")
        let gateway = try ServiceConfiguration.fromEnvironment(.gateway, environment: [:])
        #expect(gateway.publicHTTP?.port == 8080)
    }

    @Test("every missing or invalid variable is listed in one error")
    func everyProblemAtOnce() {
        let environment = [
            "RAMPART_OPS_PORT": "http",
            "RAMPART_POSTGRES_PORT": "70000",
            "RAMPART_POSTGRES_TLS": "maybe",
            "RAMPART_NATS_URL": "http://example",
            "RAMPART_NATS_USER": "auth",
            "RAMPART_LOG_LEVEL": "loud",
            "RAMPART_NATS_TLS_CERT": "/cert.pem",
            "RAMPART_NATS_REPLICAS": "0",
        ]
        do {
            _ = try ServiceConfiguration.fromEnvironment(.auth, environment: environment)
            Issue.record("expected a configuration error")
        } catch {
            let text = error.description
            for variable in [
                "RAMPART_OPS_PORT", "RAMPART_POSTGRES_PORT", "RAMPART_POSTGRES_TLS", "RAMPART_NATS_URL", "RAMPART_NATS_PASSWORD",
                "RAMPART_LOG_LEVEL", "RAMPART_NATS_TLS_KEY", "RAMPART_NATS_REPLICAS",
            ] {
                #expect(text.contains(variable), "\(variable) not named in: \(text)")
            }
            #expect(error.problems.count == 8)
        }
    }

    @Test("secrets never appear in descriptions")
    func secretsRedacted() throws {
        let configuration = try ServiceConfiguration.fromEnvironment(
            .auth,
            environment: ["RAMPART_NATS_USER": "auth", "RAMPART_NATS_PASSWORD": "hunter2-secret", "RAMPART_POSTGRES_PASSWORD": "pg-secret"]
        )
        #expect(configuration.nats.password == "hunter2-secret")
        #expect(configuration.nats.jetStreamReplicas == 1)
        #expect(try ServiceConfiguration.fromEnvironment(.audit, environment: ["RAMPART_NATS_REPLICAS": "3"]).nats.jetStreamReplicas == 3)
        #expect(!configuration.nats.description.contains("hunter2-secret"))
        #expect(configuration.postgres?.password == "pg-secret")
    }
}
