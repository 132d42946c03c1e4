import Logging
import NIOCore
import PostgresNIO
import RampartModels
import ServiceKit
import SodiumKit
import Synchronization
import TokenKit

/// The keys that sign access tokens (AUTH-3): Ed25519, the private halves sealed with the
/// key-encryption key ring before they are stored. The newest key signs; a key it replaced is
/// still published, and so still verifies, for `overlap` after, which must exceed the access
/// token lifetime so no token outlives its key.
final class SigningKeys: Sendable {
    let database: Database
    let keyRing: KeyRing
    let rotationSeconds: Int
    let overlapSeconds: Int
    let logger: Logger
    /// The signer and published keys, re-read at most every few seconds.
    private let cache = Mutex<(signer: AccessTokenSigner, published: [String: [UInt8]], until: ContinuousClock.Instant)?>(nil)

    init(database: Database, keyRing: KeyRing, rotationSeconds: Int, overlapSeconds: Int, logger: Logger) {
        self.database = database
        self.keyRing = keyRing
        self.rotationSeconds = rotationSeconds
        self.overlapSeconds = overlapSeconds
        self.logger = logger
    }

    func signer() async throws -> AccessTokenSigner {
        try await load().signer
    }

    /// Every key a valid token may name: the JWKS.
    func published() async throws -> [String: [UInt8]] {
        try await load().published
    }

    private func load() async throws -> (signer: AccessTokenSigner, published: [String: [UInt8]]) {
        let now = ContinuousClock.now
        if let cached = cache.withLock({ $0 }), cached.until > now { return (cached.signer, cached.published) }
        let rows = try await database.query(
            "SELECT kid, public_key, sealed_seed FROM signing_keys WHERE retired_at IS NULL OR retired_at > now() - make_interval(secs => \(Double(overlapSeconds))) ORDER BY created_at DESC"
        )
        var signer: AccessTokenSigner?
        var published: [String: [UInt8]] = [:]
        for try await (kid, publicKey, sealed) in rows.decode((String, ByteBuffer, String).self) {
            published[kid] = Array(buffer: publicKey)
            if signer == nil {
                let seed = try keyRing.open(try SealedSecret(text: sealed), associatedData: Array(kid.utf8))
                signer = AccessTokenSigner(keyID: kid, key: try SigningKey(seed: seed))
            }
        }
        guard let signer else { throw RampartError(.unavailable, "no token signing key yet") }
        cache.withLock { $0 = (signer, published, now + .seconds(5)) }
        return (signer, published)
    }

    /// Makes the first key, or a new one once the newest is `rotationSeconds` old, and forgets
    /// keys retired for longer than the overlap. Replicas take turns under an advisory lock.
    func rotateIfDue() async throws {
        try await database.transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext('rampart.auth.signing_keys'))", logger: logger)
            let newest = try await connection.query(
                "SELECT extract(epoch FROM now() - created_at)::bigint FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
                logger: logger
            )
            var age: Int64?
            for try await value in newest.decode(Int64.self) { age = value }
            if age == nil || age! >= Int64(rotationSeconds) {
                let kid = "k" + randomHex128().prefix(12)
                let seed = randomBytes(SigningKey.seedByteCount)
                let key = try SigningKey(seed: seed)
                let sealed = keyRing.seal(seed, associatedData: Array(kid.utf8)).text
                try await connection.query("UPDATE signing_keys SET retired_at = now() WHERE retired_at IS NULL", logger: logger)
                try await connection.query(
                    "INSERT INTO signing_keys (kid, public_key, sealed_seed) VALUES (\(kid), \(ByteBuffer(bytes: key.publicKey)), \(sealed))",
                    logger: logger
                )
                logger.info("token signing key rotated", metadata: ["kid": "\(kid)"])
            }
            try await connection.query(
                "DELETE FROM signing_keys WHERE retired_at < now() - make_interval(secs => \(Double(overlapSeconds)))",
                logger: logger
            )
        }
        cache.withLock { $0 = nil }
    }
}
