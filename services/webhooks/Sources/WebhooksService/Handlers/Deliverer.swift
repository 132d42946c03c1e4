import AsyncHTTPClient
import GuardedHTTP
import Logging
import NIOCore
import NIOHTTP1
import PostgresNIO
import RampartModels
import ServiceKit
import ServiceLifecycle
import SodiumKit
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Sends due deliveries (WH-2, WH-3), up to `concurrency` at once per replica: checks the
/// destination again, signs with every live secret, posts with a deadline, reads at most the
/// body limit, and records the outcome: done, retried on the schedule, dead, or the endpoint
/// disabled (a 410, or failing for too long).
struct Deliverer: Service {
    let settings: WebhooksSettings
    let database: Database
    let queue: DeliveryQueue
    let destinations: DestinationGuard
    let clients: GuardedHTTPClient
    let audit: AuditPublisher
    let clock: DeliveryClock
    let wake: WakeSignal
    let health: HealthChecks
    let logger: Logger

    func run() async throws {
        await health.waitUntilStarted()
        let inFlight = InFlight()
        // Claims wait for a quarter of the slots to be free, so one query claims several.
        let batch = max(1, settings.concurrency / 4)
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                while !Task.isCancelled {
                    let busy = inFlight.count.load(ordering: .relaxed)
                    let room = settings.concurrency - busy
                    var claimed: [(TenantID, UUID)] = []
                    if room >= batch || (busy == 0 && room > 0) {
                        let now = clock.milliseconds()
                        let lease = now + Int64(settings.timeoutSeconds + 30) * 1000
                        do {
                            claimed = try await queue.claim(limit: room, now: now, leaseUntil: lease)
                        } catch {
                            if Task.isCancelled { break }
                            logger.warning("webhook queue not read, retrying", metadata: ["error": "\(loggable(error))"])
                            try? await Task.sleep(for: .seconds(1))
                            continue
                        }
                    }
                    for (tenant, deliveries) in Dictionary(grouping: claimed, by: \.0) {
                        let ids = deliveries.map(\.1)
                        let loaded: [UUID: Work]
                        do {
                            loaded = try await load(ids, tenant: tenant)
                        } catch {
                            logger.warning(
                                "webhook deliveries not read; retried when their lease ends",
                                metadata: ["tenant": "\(tenant.hex)", "error": "\(loggable(error))"]
                            )
                            continue
                        }
                        for delivery in ids {
                            inFlight.count.add(1, ordering: .relaxed)
                            group.addTask {
                                await attempt(delivery, tenant: tenant, work: loaded[delivery])
                                inFlight.count.subtract(1, ordering: .relaxed)
                                wake.signal()
                            }
                        }
                    }
                    // Too full to claim (every slot busy included: this loop must never spin
                    // without suspending, or it starves the attempts it waits for), or nothing
                    // due: until an attempt ends, something is queued, or the poll.
                    if claimed.count < room || room <= 0 { await wake.wait(upTo: .milliseconds(250)) }
                }
            }
        }
        await clients.shutdown()
    }

    /// The delivery as stored, with what its endpoint needs to send it.
    struct Work {
        var status: String
        var attempts: Int
        var eventID: UUID
        var payload: String
        var endpoint: UUID
        var url: String
        var enabled: Bool
        var secrets: [[UInt8]]
        var failingSinceMs: Int64?
    }

    enum Outcome {
        case succeeded(status: Int, latencyMs: Int64)
        case failed(status: Int, error: String, latencyMs: Int64, retryAfterSeconds: Int?)
        case gone(latencyMs: Int64)
    }

    /// `work` is the delivery as loaded; nil when it (or its tenant) is gone.
    func attempt(_ delivery: UUID, tenant: TenantID, work: Work?) async {
        do {
            guard let work, work.status == "pending" else {
                try await queue.remove(delivery, tenant: tenant)
                return
            }
            guard work.enabled else {
                try await record(delivery, tenant: tenant, work: work, outcome: nil)
                return
            }
            let outcome = await send(work)
            // Stopped mid-attempt: the lease brings the delivery back, to this replica or another.
            if Task.isCancelled { return }
            try await record(delivery, tenant: tenant, work: work, outcome: outcome)
        } catch {
            logger.warning(
                "webhook delivery not recorded; retried when its lease ends",
                metadata: ["tenant": "\(tenant.hex)", "delivery": "\(delivery)", "error": "\(loggable(error))"]
            )
        }
    }

    /// The claimed deliveries of one tenant, in one query; none when its schema is gone.
    private func load(_ deliveries: [UUID], tenant: TenantID) async throws -> [UUID: Work] {
        let rows: PostgresRowSequence
        do {
            rows = try await database.query(
                """
                SELECT d.id, d.status, d.attempts, d.event_id, d.payload, e.id, e.url, e.enabled, e.secret_sealed,
                    CASE WHEN e.previous_secret_expires_at > to_timestamp(\(clock.milliseconds())::bigint / 1000.0) THEN e.previous_secret_sealed END,
                    (extract(epoch FROM e.failing_since) * 1000)::bigint
                FROM \(schema: tenant).deliveries d JOIN \(schema: tenant).endpoints e ON e.id = d.endpoint_id WHERE d.id = ANY(\(deliveries)::uuid[])
                """
            )
        } catch RampartError.noSuchTenant {
            return [:]  // the tenant was deleted
        }
        var found: [UUID: Work] = [:]
        // Secrets are opened once per endpoint in the batch.
        var opened: [UUID: [[UInt8]]] = [:]
        for try await row in rows.decode((UUID, String, Int, UUID, String, UUID, String, Bool, ByteBuffer, ByteBuffer?, Int64?).self) {
            let endpoint = row.5
            if opened[endpoint] == nil {
                let binding = EndpointStore.secretBinding(tenant, endpoint)
                var secrets = [try settings.keyEncryption.open(try SealedSecret(bytes: Array(buffer: row.8)), associatedData: binding)]
                if let previous = row.9 {
                    secrets.append(try settings.keyEncryption.open(try SealedSecret(bytes: Array(buffer: previous)), associatedData: binding))
                }
                opened[endpoint] = secrets
            }
            found[row.0] = Work(
                status: row.1,
                attempts: row.2,
                eventID: row.3,
                payload: row.4,
                endpoint: endpoint,
                url: row.6,
                enabled: row.7,
                secrets: opened[endpoint] ?? [],
                failingSinceMs: row.10
            )
        }
        return found
    }

    /// One POST, checked and signed now.
    func send(_ work: Work) async -> Outcome {
        let started = ContinuousClock.now
        func elapsed() -> Int64 {
            let duration = ContinuousClock.now - started
            return duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        }
        let destination: Destination
        let address: IPNetwork
        do {
            destination = try Destination(parsing: work.url)
            address = try await destinations.check(destination)
        } catch {
            return .failed(status: 0, error: "refused: \(error)", latencyMs: 0, retryAfterSeconds: nil)
        }
        let id = "msg_\(work.eventID.uuidString.lowercased())"
        let timestamp = clock.milliseconds() / 1000
        let body = Array(work.payload.utf8)
        var request = HTTPClientRequest(url: destination.description)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Rampart-Webhooks/1")
        request.headers.add(name: "webhook-id", value: id)
        request.headers.add(name: "webhook-timestamp", value: String(timestamp))
        request.headers.add(
            name: "webhook-signature",
            value: WebhookSignature.header(id: id, timestamp: timestamp, body: body, secrets: work.secrets)
        )
        request.body = .bytes(ByteBuffer(bytes: body))
        let client = await clients.client(for: destination, address: address)
        let deadline = NIODeadline.now() + .seconds(Int64(settings.timeoutSeconds))
        do {
            let response = try await client.execute(request, deadline: deadline, logger: logger)
            // Read (and drop) at most the limit, within the attempt's time (a silent peer meets the
            // read timeout, a trickling one this): the answer's status is what counts.
            var read = 0
            for try await chunk in response.body {
                read += chunk.readableBytes
                if read >= settings.responseBodyLimit || NIODeadline.now() > deadline { break }
            }
            let status = Int(response.status.code)
            switch status {
            case 200..<300: return .succeeded(status: status, latencyMs: elapsed())
            case 410: return .gone(latencyMs: elapsed())
            default:
                let retryAfter = [429, 503].contains(status) ? response.headers.first(name: "Retry-After").flatMap { Int($0) } : nil
                let why = (300..<400).contains(status) ? "a redirect (not followed)" : "HTTP \(status)"
                return .failed(status: status, error: why, latencyMs: elapsed(), retryAfterSeconds: retryAfter)
            }
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            return .failed(status: 0, error: "no answer within \(settings.timeoutSeconds) s", latencyMs: elapsed(), retryAfterSeconds: nil)
        } catch {
            return .failed(
                status: 0,
                error: "could not deliver: \(String(describing: error).prefix(200))",
                latencyMs: elapsed(),
                retryAfterSeconds: nil
            )
        }
    }

    /// Stores the outcome (nil: the endpoint is disabled, so the delivery is not attempted) and
    /// what follows from it, in one transaction.
    private func record(_ delivery: UUID, tenant: TenantID, work: Work, outcome: Outcome?) async throws {
        let now = clock.milliseconds()
        let attempts = outcome == nil ? work.attempts : work.attempts + 1
        var status = "dead"
        var responseStatus = 0
        var error = "the endpoint is disabled"
        var latency: Int64 = 0
        var next: Int64?
        var disable: String?
        var succeeded = false
        switch outcome {
        case nil:
            break
        case .succeeded(let code, let ms):
            (status, responseStatus, error, latency, succeeded) = ("succeeded", code, "", ms, true)
        case .gone(let ms):
            (responseStatus, error, latency, disable) = (410, "HTTP 410: the endpoint is gone", ms, "gone")
        case .failed(let code, let why, let ms, let retryAfter):
            (responseStatus, error, latency) = (code, why, ms)
            next = RetrySchedule.nextAttempt(after: attempts, now: now, schedule: settings.retrySchedule, retryAfterSeconds: retryAfter)
            if next != nil { status = "pending" }
            if let since = work.failingSinceMs, now - since >= Int64(settings.disableAfterSeconds) * 1000 { disable = "failing" }
        }
        // One statement, so one round trip and atomic: the delivery's record, its place in the
        // queue (gone, or due again), and the endpoint's failure record, which is written only
        // when it changes (a success on a healthy endpoint leaves its row alone, so deliveries
        // to one endpoint never queue behind its row lock). A 410 or too long failing turns the
        // endpoint off, once.
        let rows = try await database.query(
            """
            WITH recorded AS (
                UPDATE \(schema: tenant).deliveries SET status = \(status), attempts = \(attempts), response_status = \(responseStatus), last_error = \(error), latency_ms = \(latency),
                    last_attempt_at = CASE WHEN \(attempts) > attempts THEN to_timestamp(\(now)::bigint / 1000.0) ELSE last_attempt_at END,
                    next_attempt_at = to_timestamp(\(next)::bigint / 1000.0)
                WHERE id = \(delivery) RETURNING id
            ), dequeued AS (
                DELETE FROM delivery_queue WHERE \(next)::bigint IS NULL AND tenant_id = \(tenant.hex) AND delivery_id = \(delivery) RETURNING 1
            ), requeued AS (
                UPDATE delivery_queue SET due_at = to_timestamp(\(next)::bigint / 1000.0)
                WHERE \(next)::bigint IS NOT NULL AND tenant_id = \(tenant.hex) AND delivery_id = \(delivery) RETURNING 1
            ), endpoint AS (
                UPDATE \(schema: tenant).endpoints SET
                    failing_since = CASE WHEN \(succeeded) THEN NULL ELSE coalesce(failing_since, to_timestamp(\(now)::bigint / 1000.0)) END,
                    enabled = CASE WHEN \(disable)::text IS NULL THEN enabled ELSE false END,
                    disabled_reason = coalesce(\(disable)::text, disabled_reason)
                WHERE id = \(work.endpoint) AND \(outcome != nil) AND ((\(disable)::text IS NOT NULL AND enabled)
                    OR (\(disable)::text IS NULL AND \(succeeded) AND failing_since IS NOT NULL)
                    OR (\(disable)::text IS NULL AND NOT \(succeeded) AND failing_since IS NULL))
                RETURNING \(disable)::text IS NOT NULL AS disabled
            )
            SELECT coalesce((SELECT bool_or(disabled) FROM endpoint), false)
            """
        )
        var disabledNow = false
        for try await value in rows.decode(Bool.self) { disabledNow = value }
        if disabledNow, let disable {
            var event = Rampart_V1_AuditEvent(
                .webhookEndpointDisabled,
                tenant: tenant,
                target: ("webhook_endpoint", work.endpoint.uuidString.lowercased()),
                call: nil,
                service: .webhooks
            )
            event.reason =
                disable == "gone" ? "the endpoint answered 410 Gone" : "every delivery failed for \(settings.disableAfterSeconds / 3600) hours"
            event.details = ["url": work.url, "disabled_reason": disable]
            await audit.record(event)
        }
    }
}

/// Attempts running now, shared with the tasks that run them.
final class InFlight: Sendable {
    let count = Atomic<Int>(0)
}
