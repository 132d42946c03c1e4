import ServiceKit
import SodiumKit

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

    public init(
        signingKeyID: String = "audit-1",
        signingKey: SigningKey,
        verifyingKeys: [String: [UInt8]] = [:],
        checkpointEvents: Int = 1000,
        checkpointSeconds: Int = 60
    ) {
        self.signingKeyID = signingKeyID
        self.signingKey = signingKey
        self.verifyingKeys = verifyingKeys
        self.checkpointEvents = checkpointEvents
        self.checkpointSeconds = checkpointSeconds
    }

    /// `RAMPART_AUDIT_SIGNING_KEY=<id>:<base64 of a 32-byte Ed25519 seed>` (required),
    /// `RAMPART_AUDIT_VERIFYING_KEYS=<id>:<base64 public key>,…` (earlier keys),
    /// `RAMPART_AUDIT_CHECKPOINT_EVENTS`, `RAMPART_AUDIT_CHECKPOINT_SECONDS`.
    public init(reader: inout EnvironmentReader) {
        let text = reader.requiredString("audit.signing-key", secret: true)
        var keyID = "audit-1"
        var key = SigningKey.generate()
        if !text.isEmpty {
            let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
            if parts.count == 2, Self.isValidKeyID(parts[0]), let seed = Base64.decode(parts[1]), let parsed = try? SigningKey(seed: seed) {
                keyID = parts[0]
                key = parsed
            } else {
                reader.problem("RAMPART_AUDIT_SIGNING_KEY must be <key id>:<base64 of a 32-byte Ed25519 seed>")
            }
        }
        var verifying: [String: [UInt8]] = [:]
        for entry in reader.list("audit.verifying-keys", default: []) {
            let parts = entry.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, Self.isValidKeyID(parts[0]), let publicKey = Base64.decode(parts[1]),
                publicKey.count == SigningKey.publicKeyByteCount
            else {
                reader.problem("RAMPART_AUDIT_VERIFYING_KEYS: each entry is <key id>:<base64 of a 32-byte Ed25519 public key>")
                continue
            }
            verifying[parts[0]] = publicKey
        }
        self.init(
            signingKeyID: keyID,
            signingKey: key,
            verifyingKeys: verifying,
            checkpointEvents: reader.int("audit.checkpoint-events", default: 1000, range: 1...1_000_000),
            checkpointSeconds: reader.int("audit.checkpoint-seconds", default: 60, range: 1...86400)
        )
    }

    /// The public key that checks a checkpoint signed by `keyID`.
    func publicKey(_ keyID: String) -> [UInt8]? {
        keyID == signingKeyID ? signingKey.publicKey : verifyingKeys[keyID]
    }

    static func isValidKeyID(_ id: String) -> Bool {
        (1...64).contains(id.utf8.count) && id.utf8.allSatisfy { $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") && $0 != UInt8(ascii: ",") }
    }
}
