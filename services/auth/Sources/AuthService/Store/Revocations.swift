import NATSKit
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
import SwiftProtobuf
#else
import Foundation
#endif

/// The revocations bucket every gateway watches: a session's access tokens, or an API key, are
/// refused from the moment the watch delivers an entry (milliseconds), until no token of the
/// session can still be valid. The bucket is opened once, when auth is built.
struct Revocations: Sendable {
    let bucket: KeyValueBucket
    /// How long an entry is kept: the longest an access token lives, plus leeway.
    let keptSeconds: Int

    func record(
        _ kind: Rampart_V1_Revocation.Kind,
        tenant: TenantID,
        id: UUID,
        user: UUID,
        reason: String,
        afterSeconds delay: Int = 0
    ) async throws {
        var revocation = Rampart_V1_Revocation()
        revocation.kind = kind
        revocation.tenantID = tenant.hex
        revocation.id = id.uuidString.lowercased()
        revocation.userID = user.uuidString.lowercased()
        revocation.reason = reason
        revocation.occurredAtMs = WallClock.milliseconds()
        revocation.effectiveAtMs = revocation.occurredAtMs + Int64(delay) * 1000
        revocation.untilMs = revocation.effectiveAtMs + Int64(keptSeconds) * 1000
        _ = try await bucket.put(Subjects.Auth.revocationKey(kind, tenant: tenant, id: revocation.id), try revocation.serializedBytes())
    }
}
