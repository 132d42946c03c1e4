import Logging
import NATSKit
import RampartModels
import ServiceLifecycle
import TestSupport
import Testing

@testable import ServiceKit

/// The probe's operations.
enum Probe {
    static let gone = RPCEndpoint<Rampart_V1_HealthRequest, Rampart_V1_HealthReply>(subject: "rampart.v1.permissions.test_gone")
    static let goneUntenanted = RPCEndpoint<Rampart_V1_HealthRequest, Rampart_V1_HealthReply>(subject: "rampart.v1.permissions.test_gone_untenanted")
    static let echo = RPCEndpoint<Rampart_V1_HealthCheck, Rampart_V1_HealthCheck>(subject: "rampart.v1.permissions.test_echo")
    static let fail = RPCEndpoint<Rampart_V1_HealthRequest, Rampart_V1_HealthReply>(subject: "rampart.v1.permissions.test_fail")
    static let refuse = RPCEndpoint<Rampart_V1_HealthRequest, Rampart_V1_HealthReply>(subject: "rampart.v1.permissions.test_refuse")
    static let slow = RPCEndpoint<Rampart_V1_HealthRequest, Rampart_V1_HealthReply>(subject: "rampart.v1.permissions.test_slow")
}

/// A service with a few test handlers, to exercise the router and the server.
func probeService(calls: CallCounter) -> ServiceDescriptor {
    ServiceDescriptor(name: .permissions) { context in
        let database = try context.database
        var router = RPCRouter()
        // A tenant's schema that is not there, as a deletion leaves it; and a missing table of
        // the service's own, which is a fault.
        router.register(Probe.gone, requires: [.tenant]) { (_, context) in
            _ = try await database.query("SELECT 1 FROM \(schema: try context.requireTenant()).boards")
            return Rampart_V1_HealthReply()
        }
        router.register(Probe.goneUntenanted) { (_, _) in
            _ = try await database.query("SELECT 1 FROM rampart_no_such_table")
            return Rampart_V1_HealthReply()
        }
        router.register(Probe.echo, requires: [.tenant]) { (request, context) in
            await calls.increment()
            var reply = request
            reply.detail = "tenant=\(context.tenantID?.hex ?? "none") request=\(context.requestID)"
            return reply
        }
        router.register(Probe.fail) { (_: Rampart_V1_HealthRequest, _) -> Rampart_V1_HealthReply in
            struct Secret: Error { let password = "do-not-leak" }
            throw Secret()
        }
        router.register(Probe.refuse) { (_: Rampart_V1_HealthRequest, _) -> Rampart_V1_HealthReply in
            throw RampartError.invalidArgument("name is too long", field: "name")
        }
        router.register(Probe.slow) { (_: Rampart_V1_HealthRequest, _) -> Rampart_V1_HealthReply in
            try await Task.sleep(for: .milliseconds(500))
            return Rampart_V1_HealthReply()
        }
        return ServiceParts(routes: router)
    }
}

actor CallCounter {
    var count = 0
    func increment() { count += 1 }
}

@Suite("RPC router and server over a real nats-server")
struct RPCTests {
    @Test("handlers get the decoded request and a validated call context")
    func roundTrip() async throws {
        let calls = CallCounter()
        let nats = try await NATSServer.start()
        let service = try await ServiceRuntime.assemble(
            probeService(calls: calls),
            configuration: try await testConfiguration(.permissions, nats: nats),
            logger: quietLogger()
        )
        try await whileRunning(service) {
            try await waitUntilReady(service)
            let client = RPCClient(connection: service.context.nats)
            let tenant = TenantID.random()
            var request = Rampart_V1_HealthCheck()
            request.name = "x"
            let reply = try await client.call(
                Probe.echo,
                request,
                context: CallContext(requestID: "req-42", tenantID: tenant)
            )
            #expect(reply.name == "x")
            #expect(reply.detail == "tenant=\(tenant.hex) request=req-42")
        }
    }

    @Test("malformed protobuf, missing and hostile headers get precise errors, and the service keeps serving")
    func hostileRequests() async throws {
        let calls = CallCounter()
        let nats = try await NATSServer.start()
        let service = try await ServiceRuntime.assemble(
            probeService(calls: calls),
            configuration: try await testConfiguration(.permissions, nats: nats),
            logger: quietLogger()
        )
        try await whileRunning(service) {
            try await waitUntilReady(service)
            let nats = service.context.nats
            let subject = Probe.echo.subject
            // A deadline far enough for every request below, however busy the machine.
            let valid = CallContext(tenantID: TenantID.random(), timeout: .seconds(120)).headers

            func errorOf(_ payload: [UInt8], _ headers: NATSHeaders) async throws -> Rampart_V1_Error {
                let reply = try await nats.request(payload, to: subject, headers: headers, timeout: .seconds(10))
                #expect(reply.headers[CallHeader.error] != nil)
                return try Rampart_V1_Error(serializedBytes: reply.payload)
            }

            // Not a protobuf message at all.
            let garbage = try await errorOf([0xFF, 0xFF, 0xFF, 0xFF, 0x0F], valid)
            #expect(garbage.code == .malformedRequest)
            // Oversized: refused before decoding.
            let huge = try await errorOf([UInt8](repeating: 0x0A, count: RPCRouter.maximumRequestBytes + 1), valid)
            #expect(huge.code == .malformedRequest)
            #expect(huge.message.contains("exceeds"))

            for (header, value) in [
                (CallHeader.requestID, nil), (CallHeader.deadline, nil), (CallHeader.tenantID, nil),
                (CallHeader.tenantID, "0123456789abcdef0123456789abcdeg"), (CallHeader.tenantID, "x'; DROP SCHEMA public; --"),
                (CallHeader.requestID, String(repeating: "a", count: 500)), (CallHeader.deadline, "soon"),
                (CallHeader.clientIP, "999.1.1.1"), (CallHeader.principal, "root"), (CallHeader.userAgent, String(repeating: "u", count: 600)),
            ] as [(String, String?)] {
                var headers = valid
                headers[header] = value
                let error = try await errorOf([], headers)
                #expect(error.code == .missingHeader, "\(header)=\(value ?? "absent")")
                #expect(error.details["header"] == header)
            }
            // None of the refused requests reached the handler.
            #expect(await calls.count == 0)

            // An internal failure is reported without its details.
            var failing = CallContext().headers
            failing[CallHeader.requestID] = "req-fail"
            let failure = try await nats.request([], to: Probe.fail.subject, headers: failing, timeout: .seconds(10))
            let hidden = try Rampart_V1_Error(serializedBytes: failure.payload)
            #expect(hidden.code == .internal)
            #expect(hidden.message == "internal error")
            #expect(hidden.requestID == "req-fail")
            #expect(!String(decoding: failure.payload, as: UTF8.self).contains("do-not-leak"))

            // A call that finds its tenant's schema gone is told the tenant is not there; a
            // missing table of the service's own stays an internal error.
            for (gone, tenant, code) in [
                (Probe.gone, TenantID.random(), RampartError.Code.notFound),
                (Probe.goneUntenanted, nil, .internal),
            ] {
                do {
                    _ = try await RPCClient(connection: nats).call(
                        gone,
                        Rampart_V1_HealthRequest(),
                        context: CallContext(tenantID: tenant)
                    )
                    Issue.record("expected an error from \(gone.subject)")
                } catch let error as RampartError {
                    #expect(error.code == code, "\(gone.subject)")
                }
            }

            // A domain error travels intact.
            do {
                _ = try await RPCClient(connection: nats).call(
                    Probe.refuse,
                    Rampart_V1_HealthRequest(),
                    context: CallContext()
                )
                Issue.record("expected an error")
            } catch let error as RampartError {
                #expect(error == RampartError.invalidArgument("name is too long", field: "name"))
            }

            // And the service still serves.
            _ = try await RPCClient(connection: nats).call(
                Probe.echo,
                Rampart_V1_HealthCheck(),
                context: CallContext(tenantID: TenantID.random())
            )
            #expect(await calls.count == 1)
        }
    }

    @Test("a request past its deadline is answered deadline_exceeded, not served")
    func deadline() async throws {
        let nats = try await NATSServer.start()
        let service = try await ServiceRuntime.assemble(
            probeService(calls: CallCounter()),
            configuration: try await testConfiguration(.permissions, nats: nats),
            logger: quietLogger()
        )
        try await whileRunning(service) {
            try await waitUntilReady(service)
            var headers = CallContext().headers
            headers[CallHeader.deadline] = "1000"  // 1970
            let reply = try await service.context.nats.request([], to: Probe.slow.subject, headers: headers, timeout: .seconds(10))
            #expect(try Rampart_V1_Error(serializedBytes: reply.payload).code == .deadlineExceeded)
            do {
                _ = try await RPCClient(connection: service.context.nats).call(
                    Probe.slow,
                    Rampart_V1_HealthRequest(),
                    context: CallContext(timeout: .milliseconds(100))
                )
                Issue.record("expected deadline_exceeded")
            } catch let error as RampartError {
                #expect(error.code == .deadlineExceeded)
            }
        }
    }

    @Test("a far-future deadline from the caller does not let a handler run past the server's limit")
    func deadlineCeiling() async throws {
        var context = CallContext()
        context.deadline = Int64.max / 2  // centuries away
        let clock = ContinuousClock()
        let started = clock.now
        let watch = DeadlineWatch()
        let sweeping = Task { await watch.sweep() }
        defer { sweeping.cancel() }
        await #expect(throws: RampartError(.deadlineExceeded, "deadline exceeded")) {
            _ = try await RPCServer.withDeadline(context, limit: .milliseconds(100), watch: watch) {
                try await Task.sleep(for: .seconds(30))
                return []
            }
        }
        // Far below the handler's 30 seconds, with room for a machine busy starting every suite.
        #expect(clock.now - started < .seconds(15))
        #expect(RPCServer.maximumHandlerTime == .seconds(60))
    }

    @Test("a deadline cancels only the work past it: answers and errors before it come back as they are, 300 at once")
    func deadlineWatch() async throws {
        struct Refused: Error, Equatable {}
        let watch = DeadlineWatch()
        let sweeping = Task { await watch.sweep() }
        defer { sweeping.cancel() }
        let clock = ContinuousClock()
        let started = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<300 {
                group.addTask {
                    switch index % 3 {
                    case 0:
                        let answer = try await watch.run(until: .now + .seconds(30)) { index }
                        #expect(answer == index)
                    case 1:
                        await #expect(throws: Refused()) { try await watch.run(until: .now + .seconds(30)) { throw Refused() } }
                    default:
                        await #expect(throws: RampartError(.deadlineExceeded, "deadline exceeded")) {
                            try await watch.run(until: .now + .milliseconds(50)) {
                                try await Task.sleep(for: .seconds(30))
                                return 0
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        // The sleepers were cancelled, not waited for their 30 s; nothing is left watched. The
        // bound leaves room for a loaded machine (the full suite on two cores took 15.2 s once).
        #expect(clock.now - started < .seconds(25))
        #expect(watch.watching == 0)
    }

    @Test("requests over the in-flight limit are refused at once, and served again once it frees")
    func loadShedding() async throws {
        let nats = try await NATSServer.start()
        var configuration = try await testConfiguration(.permissions, nats: nats)
        configuration.maxRequestsInFlight = 2
        let service = try await ServiceRuntime.assemble(probeService(calls: CallCounter()), configuration: configuration, logger: quietLogger())
        try await whileRunning(service) {
            try await waitUntilReady(service)
            let client = RPCClient(connection: service.context.nats)
            let outcomes = try await withThrowingTaskGroup(of: Rampart_V1_ErrorCode.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        do {
                            _ = try await client.call(
                                Probe.slow,
                                Rampart_V1_HealthRequest(),
                                context: CallContext(timeout: .seconds(10))
                            )
                            return .unspecified
                        } catch let error as RampartError {
                            return error.code
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 == .unspecified }.count == 2)
            #expect(outcomes.filter { $0 == .unavailable }.count == 4)
            // The slots are free again.
            _ = try await client.call(
                Probe.slow,
                Rampart_V1_HealthRequest(),
                context: CallContext(timeout: .seconds(10))
            )
        }
    }

    @Test("OPS-3 graceful shutdown finishes the request in flight before it stops")
    func gracefulShutdown() async throws {
        let nats = try await NATSServer.start()
        let service = try await ServiceRuntime.assemble(
            probeService(calls: CallCounter()),
            configuration: try await testConfiguration(.permissions, nats: nats),
            logger: quietLogger()
        )
        let client = try await NATSConnection.connect(NATSConfiguration(servers: [nats.url]), logger: quietLogger())
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            try await waitUntilReady(service)
            let inFlight = Task {
                try await RPCClient(connection: client).call(
                    Probe.slow,
                    Rampart_V1_HealthRequest(),
                    context: CallContext()
                )
            }
            try await Task.sleep(for: .milliseconds(100))
            await service.group.triggerGracefulShutdown()
            _ = try await inFlight.value  // answered, not dropped
            try await group.waitForAll()
        }
        // Stopped: nobody serves the subject any more.
        await #expect(throws: RampartError.self) {
            _ = try await RPCClient(connection: client).call(
                Probe.slow,
                Rampart_V1_HealthRequest(),
                context: CallContext()
            )
        }
        await client.close()
    }
}
