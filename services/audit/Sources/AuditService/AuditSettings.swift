public import ServiceKit
public import SodiumKit

/// audit's own configuration: the checkpoint signing key (AUD-5) and how often to sign.
public struct AuditSettings: Sendable {
    /// Signs new checkpoints; its ID is stored with each.
    public var signingKeyID: String
    public var signingKey: SigningKey
    /// Public keys of earlier signing keys, by ID, so checkpoints they signed still verify.
    public var verifyingKeys: [String: [UInt8]]
    /// A checkpoint after this many events in a chain…
    public var checkpointEvents: Int
    /// …or once the newest unsigned event is this old.
    public var checkpointSeconds: Int
    /// How long platform events (bans: no tenant) are kept; tenants' follow their plan.
    public var platformRetentionDays: Int
    /// How often retention runs.
    public var retentionIntervalSeconds: Int

    public init(
        signingKeyID: String = "audit-1",
        signingKey: SigningKey,
        verifyingKeys: [String: [UInt8]] = [:],
        checkpointEvents: Int = 1000,
        checkpointSeconds: Int = 60,
        platformRetentionDays: Int = 730,
        retentionIntervalSeconds: Int = 3600
    ) {
        self.signingKeyID = signingKeyID
        self.signingKey = signingKey
        self.verifyingKeys = verifyingKeys
        self.checkpointEvents = checkpointEvents
        self.checkpointSeconds = checkpointSeconds
        self.platformRetentionDays = platformRetentionDays
        self.retentionIntervalSeconds = retentionIntervalSeconds
    }

    /// `RAMPART_AUDIT_SIGNING_KEY=<id>:<base64 of a 32-byte Ed25519 seed>` (required),
    /// `RAMPART_AUDIT_VERIFYING_KEYS=<id>:<base64 public key>,…` (earlier keys),
    /// `RAMPART_AUDIT_CHECKPOINT_EVENTS`, `RAMPART_AUDIT_CHECKPOINT_SECONDS`,
    /// `RAMPART_AUDIT_PLATFORM_RETENTION_DAYS`, `RAMPART_AUDIT_RETENTION_INTERVAL_SECONDS`.
    public init(reader: inout EnvironmentReader) {
        let text = reader.requiredString("audit.signing-key", secret: true)
        var keyID = "audit-1"
        var key = SigningKey.generate()  // only while a problem is reported: the service exits
        if !text.isEmpty {
            do {
                let entries = try KeyRing.parseEntries(text)
                guard entries.count == 1 else {
                    throw SodiumError.invalidKey("give one signing key; earlier ones go in RAMPART_AUDIT_VERIFYING_KEYS")
                }
                key = try SigningKey(seed: entries[0].bytes)
                keyID = entries[0].id
            } catch {
                reader.problem("RAMPART_AUDIT_SIGNING_KEY must be <key id>:<base64 of a 32-byte Ed25519 seed>: \(error)")
            }
        }
        var verifying: [String: [UInt8]] = [:]
        if let text = reader.optionalString("audit.verifying-keys") {
            do {
                for entry in try KeyRing.parseEntries(text) {
                    guard entry.bytes.count == SigningKey.publicKeyByteCount else {
                        throw SodiumError.invalidKey("key \(entry.id) is not a 32-byte Ed25519 public key")
                    }
                    verifying[entry.id] = entry.bytes
                }
            } catch {
                reader.problem("RAMPART_AUDIT_VERIFYING_KEYS must be <key id>:<base64 public key>,…: \(error)")
            }
        }
        self.init(
            signingKeyID: keyID,
            signingKey: key,
            verifyingKeys: verifying,
            checkpointEvents: reader.int("audit.checkpoint-events", default: 1000, range: 1...1_000_000),
            checkpointSeconds: reader.int("audit.checkpoint-seconds", default: 60, range: 1...86400),
            platformRetentionDays: reader.int("audit.platform-retention-days", default: 730, range: RetentionPlan.longRetentionDays...36500),
            retentionIntervalSeconds: reader.int("audit.retention-interval-seconds", default: 3600, range: 10...86400)
        )
    }

    /// Every key that may have signed a checkpoint or a cut here.
    var signatures: AuditSignatures {
        AuditSignatures(publicKeys: verifyingKeys.merging([signingKeyID: signingKey.publicKey]) { _, current in current })
    }
}
