// `make bench`: NATS request/reply through NATSKit next to the same loop in C against nats.c
// (both against one C responder, so only the requesting side differs), and JetStream
// publish-with-ack. Release builds only: debug numbers mean nothing.
import Foundation
import Logging
import NATSKit
import TestSupport

let requestCount = Int(ProcessInfo.processInfo.environment["BENCH_REQUESTS"] ?? "") ?? 20_000
let publishCount = Int(ProcessInfo.processInfo.environment["BENCH_PUBLISHES"] ?? "") ?? 5_000
let cBinary = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : ".build/bench/nats_reqrep"
let subject = "bench.echo"
let payload = [UInt8](repeating: UInt8(ascii: "x"), count: 128)

struct Row {
    var name: String
    var rate: Double
    var unit: String
    var p50: Double?
    var p99: Double?
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
    sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
}

func launch(_ arguments: [String]) throws -> (Process, Pipe) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: cBinary)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    return (process, output)
}

var logger = Logger(label: "bench")
logger.logLevel = .warning
let server = try await NATSServer.start()
var rows: [Row] = []

// One C responder for both requesters.
let (responder, responderOutput) = try launch(["responder", server.url, subject])
_ = responderOutput.fileHandleForReading.availableData  // "ready"

// NATSKit, sequential: one request in flight, like the C loop.
let connection = try await NATSConnection.connect(NATSConfiguration(servers: [server.url]), logger: logger)
for _ in 0..<1_000 { _ = try await connection.request(payload, to: subject, timeout: .seconds(5)) }
/// Off the main actor (top-level code is main-actor isolated): services serve on the
/// cooperative pool, and so should the loop that stands for them.
@concurrent
func sequentialRequests(_ connection: NATSConnection, count: Int) async throws -> (seconds: Double, latencies: [Double]) {
    var latencies: [Double] = []
    latencies.reserveCapacity(count)
    let clock = ContinuousClock()
    let start = clock.now
    for _ in 0..<count {
        let t0 = clock.now
        _ = try await connection.request(payload, to: subject, timeout: .seconds(5))
        latencies.append(seconds(clock.now - t0) * 1e6)
    }
    return (seconds(clock.now - start), latencies.sorted())
}

let (sequentialSeconds, latencies) = try await sequentialRequests(connection, count: requestCount)
let clock = ContinuousClock()
rows.append(
    Row(
        name: "request/reply, NATSKit (1 in flight)",
        rate: Double(requestCount) / sequentialSeconds,
        unit: "req/s",
        p50: percentile(latencies, 0.5),
        p99: percentile(latencies, 0.99)
    )
)

// The same loop in C.
let (requester, requesterOutput) = try launch(["requester", server.url, subject, String(requestCount)])
requester.waitUntilExit()
let cLine = String(decoding: requesterOutput.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
var cFields: [String: Double] = [:]
for field in cLine.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
    let parts = field.split(separator: "=")
    if parts.count == 2 { cFields[String(parts[0])] = Double(parts[1]) }
}
let cRate = cFields["rps"] ?? 0
rows.append(Row(name: "request/reply, nats.c (1 in flight)", rate: cRate, unit: "req/s", p50: cFields["p50_us"], p99: cFields["p99_us"]))

// NATSKit with 32 requests in flight: what the async API buys over a blocking one.
let concurrentStart = clock.now
try await withThrowingTaskGroup(of: Void.self) { group in
    for worker in 0..<32 {
        group.addTask {
            for _ in stride(from: worker, to: requestCount, by: 32) {
                _ = try await connection.request(payload, to: subject, timeout: .seconds(5))
            }
        }
    }
    try await group.waitForAll()
}
rows.append(Row(name: "request/reply, NATSKit (32 in flight)", rate: Double(requestCount) / seconds(clock.now - concurrentStart), unit: "req/s"))
responder.terminate()
responder.waitUntilExit()

// JetStream publish with ack (file storage).
let jetStream = try connection.jetStream()
try await jetStream.ensureStream(.init(name: "BENCH", subjects: ["bench.js.>"]))
let publishStart = clock.now
for index in 0..<publishCount {
    _ = try await jetStream.publish(payload, to: "bench.js.one", messageID: "seq-\(index)")
}
rows.append(Row(name: "JetStream publish + ack (1 in flight)", rate: Double(publishCount) / seconds(clock.now - publishStart), unit: "msg/s"))

let windowStart = clock.now
try await withThrowingTaskGroup(of: Void.self) { group in
    for worker in 0..<32 {
        group.addTask {
            for index in stride(from: worker, to: publishCount, by: 32) {
                _ = try await jetStream.publish(payload, to: "bench.js.many", messageID: "many-\(index)")
            }
        }
    }
    try await group.waitForAll()
}
rows.append(Row(name: "JetStream publish + ack (32 in flight)", rate: Double(publishCount) / seconds(clock.now - windowStart), unit: "msg/s"))
await connection.drain()
try await server.stop()  // a global is never deinitialised: stop the server explicitly

func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }
func format(_ value: Double?) -> String { value.map { String(format: "%.1f", $0) } ?? "-" }
print("")
print(pad("benchmark", 40) + pad("rate", 16) + pad("p50 µs", 10) + "p99 µs")
print(String(repeating: "-", count: 76))
for row in rows {
    print(pad(row.name, 40) + pad(String(format: "%.0f %@", row.rate, row.unit), 16) + pad(format(row.p50), 10) + format(row.p99))
}
let ratio = cRate > 0 ? rows[0].rate / cRate : 0
print(String(format: "\nNATSKit / nats.c sequential throughput: %.0f%% (target ≥ 80%%)", ratio * 100))
