import HTTPTypes
import Hummingbird
import Logging
import NATSKit
import NIOCore
import RampartModels
import ServiceKit
import ServiceLifecycle
import SodiumKit
import SwiftProtobuf
import Synchronization
import TokenKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The public keys access tokens are verified with, fetched from auth's JWKS and fetched
/// again (at most every few seconds) when a token names a key not seen yet: after a rotation.
/// A token that verified is remembered until it expires, so a client's requests after its
/// first cost a lookup rather than a signature check; only validly signed tokens are kept, and
/// the memory is dropped whenever the keys are fetched again. Revocation is checked by the
/// caller on every request regardless.
final class AccessTokenCache: Sendable {
    let rpc: RPCClient
    let issuer: String
    /// Clock skew tolerated between auth and this gateway, on `iat` and `exp`.
    let leewaySeconds: Int64
    private let state = Mutex<(keys: [String: [UInt8]], fetchedAt: ContinuousClock.Instant?)>(([:], nil))
    private let verified = Mutex<[String: AccessToken]>([:])
    /// Past it the memory starts over (a 15-minute token is ~600 bytes: a few MB at most).
    static let maximumVerified = 10_000

    init(rpc: RPCClient, issuer: String, leewaySeconds: Int64 = 30) {
        self.rpc = rpc
        self.issuer = issuer
        self.leewaySeconds = leewaySeconds
    }

    func verify(_ token: String) async throws -> AccessToken {
        let now = WallClock.milliseconds() / 1000
        if let claims = verified.withLock({ $0[token] }), now <= claims.exp + leewaySeconds, claims.iat <= now + leewaySeconds {
            return claims
        }
        let (keys, fetchedAt) = state.withLock { ($0.keys, $0.fetchedAt) }
        let result = Result { () throws(TokenError) in
            try AccessTokenVerifier(issuer: issuer, publicKeys: keys, leewaySeconds: leewaySeconds).verify(token, now: now)
        }
        let mayFetch = fetchedAt.map { ContinuousClock.now - $0 > .seconds(5) } ?? true
        guard case .failure(.unknownKey) = result, mayFetch else { return try remember(token, result.get()) }
        let fresh = try JWKS.parse(try await jwks())
        state.withLock { $0 = (fresh, ContinuousClock.now) }
        verified.withLock { $0.removeAll() }
        return try remember(token, AccessTokenVerifier(issuer: issuer, publicKeys: fresh, leewaySeconds: leewaySeconds).verify(token, now: now))
    }

    private func remember(_ token: String, _ claims: AccessToken) -> AccessToken {
        verified.withLock { memory in
            if memory.count >= Self.maximumVerified { memory.removeAll(keepingCapacity: true) }
            memory[token] = claims
        }
        return claims
    }

    func jwks() async throws -> String {
        try await rpc.call(Subjects.Auth.jwks, Rampart_V1_JwksRequest(), context: CallContext()).json
    }
}

/// Sessions and API keys ended early, mirrored from auth's revocations bucket: every gateway
/// replica watches it, so a sign-out or a revoked key is refused everywhere as soon as the
/// watch delivers it (milliseconds), and a lookup costs no round trip. An entry is dropped
/// once no token of its session can still be valid.
final class RevocationList: Service, Sendable {
    private let connection: NATSConnection
    private let logger: Logger
    /// Bucket key (`session.<tenant>.<id>`, `api_key.<tenant>.<id>`) → when the revocation
    /// takes effect and until when it is kept, in ms.
    private let entries = Mutex<[String: (from: Int64, until: Int64)]>([:])
    private let caughtUp = OneTimeSignal()

    init(connection: NATSConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// True once every revocation stored when the watch started is loaded: before that, the
    /// gateway refuses credentials rather than accept one that was revoked.
    var isCaughtUp: Bool { caughtUp.isSet }

    func isRevoked(_ kind: Rampart_V1_Revocation.Kind, tenant: TenantID, id: String, now: Int64 = WallClock.milliseconds()) -> Bool {
        let key = Subjects.Auth.revocationKey(kind, tenant: tenant, id: id)
        guard let entry = entries.withLock({ $0[key] }) else { return false }
        return entry.from <= now && now < entry.until
    }

    /// Takes a revocation in from the moment it is received (`now`), whatever auth's clock said:
    /// a gateway whose clock is behind auth's must not let a revoked credential through until
    /// it catches up (issue 26, finding 13). A delayed one (a rotated key's grace) takes effect
    /// after its delay counted from receipt, or at auth's time if that comes first.
    func apply(_ entry: KeyValueEntry, now: Int64 = WallClock.milliseconds()) {
        guard entry.operation == .put, let revocation = try? Rampart_V1_Revocation(serializedBytes: entry.value) else { return }
        entries.withLock { entries in
            let delay = max(0, revocation.effectiveAtMs - revocation.occurredAtMs)
            let from = min(max(revocation.occurredAtMs, revocation.effectiveAtMs), now + delay)
            // The earliest effect wins: a key revoked outright stays revoked whatever its rotation said.
            let held = entries[entry.key]
            entries[entry.key] = (min(held?.from ?? from, from), max(held?.until ?? 0, revocation.untilMs))
            // Expired entries go now and then, not on every write.
            if entries.count % 1024 == 0 { entries = entries.filter { $0.value.until > now } }
        }
    }

    func run() async throws {
        await repeatUntilShutdown("revocation watch", logger: logger, isExpected: NATSError.isNotFound) {
            let bucket = try await self.connection.jetStream().keyValue(Subjects.Auth.revocationsBucket)
            for try await event in try await bucket.watch() {
                switch event {
                case .entry(let entry): self.apply(entry)
                case .caughtUp: self.caughtUp.signal()
                }
            }
        }
    }
}

/// API keys the gateway verified lately, so that not every call asks auth (KEY-1, GW-4):
/// an entry lives `lifetime` at most, ends with the key's expiry, and is refused at once when
/// the revocation list names its key. Held by the SHA-256 of the key, never the key itself.
final class APIKeyCache: Sendable {
    let rpc: RPCClient
    let revocations: RevocationList
    let lifetime: Duration
    static let capacity = 50_000
    private let entries = Mutex<[[UInt8]: (key: Rampart_V1_VerifyApiKeyReply, until: ContinuousClock.Instant)]>([:])

    init(rpc: RPCClient, revocations: RevocationList, lifetime: Duration) {
        self.rpc = rpc
        self.revocations = revocations
        self.lifetime = lifetime
    }

    func verify(_ key: String, context: CallContext) async throws -> Rampart_V1_VerifyApiKeyReply {
        let digest = sha256(Array(key.utf8))
        let now = ContinuousClock.now
        if let held = entries.withLock({ $0[digest] }), held.until > now {
            return try usable(held.key)
        }
        var request = Rampart_V1_VerifyApiKeyRequest()
        request.key = key
        let verified = try await rpc.call(Subjects.Auth.verifyAPIKey, request, context: context)
        let key = try usable(verified)
        entries.withLock { entries in
            if entries.count >= Self.capacity { entries = entries.filter { $0.value.until > now } }
            if entries.count < Self.capacity { entries[digest] = (key, now + lifetime) }
        }
        return key
    }

    /// The key, unless it was revoked or expired since it was verified.
    private func usable(_ key: Rampart_V1_VerifyApiKeyReply) throws -> Rampart_V1_VerifyApiKeyReply {
        let now = WallClock.milliseconds()
        guard let tenant = TenantID(key.tenantID), !revocations.isRevoked(.apiKey, tenant: tenant, id: key.apiKeyID, now: now),
            key.expiresAtMs == 0 || key.expiresAtMs > now
        else { throw RampartError(.unauthenticated, "the API key is not valid") }
        return key
    }
}
