import CSodium

/// argon2id password hashing (libsodium's `crypto_pwhash_str`), in the self-describing PHC
/// string form `$argon2id$v=19$m=…,t=…,p=1$salt$hash`.
///
/// Hashing is deliberately slow and memory-hard: call it off the event loops.
public struct Argon2id: Sendable, Equatable {
    public var operationsLimit: UInt64
    public var memoryLimit: Int

    public init(operationsLimit: UInt64, memoryLimit: Int) {
        self.operationsLimit = operationsLimit
        self.memoryLimit = memoryLimit
    }

    /// libsodium's interactive limits (2 passes, 64 MiB): for logins.
    public static var interactive: Argon2id {
        Argon2id(operationsLimit: UInt64(crypto_pwhash_opslimit_interactive()), memoryLimit: crypto_pwhash_memlimit_interactive())
    }

    /// libsodium's moderate limits (3 passes, 256 MiB).
    public static var moderate: Argon2id {
        Argon2id(operationsLimit: UInt64(crypto_pwhash_opslimit_moderate()), memoryLimit: crypto_pwhash_memlimit_moderate())
    }

    public func hash(_ password: String) throws(SodiumError) -> String {
        try Sodium.ensureReady()
        var output = [CChar](repeating: 0, count: Int(crypto_pwhash_STRBYTES))
        let length = UInt64(password.utf8.count)
        let status = password.withCString { chars in
            crypto_pwhash_str_alg(&output, chars, length, operationsLimit, memoryLimit, crypto_pwhash_ALG_ARGON2ID13)
        }
        guard status == 0 else { throw .hashingFailed }
        return String(nullTerminated: output)
    }

    /// True when `password` matches `hash` (any argon2id parameters). Malformed hashes do not
    /// match.
    public static func verify(_ password: String, against hash: String) -> Bool {
        guard Sodium.isReady, hash.hasPrefix("$argon2id$") else { return false }
        let length = UInt64(password.utf8.count)
        return password.withCString { chars in
            crypto_pwhash_str_verify(hash, chars, length) == 0
        }
    }

    /// True when `hash` was made with other parameters than these: rehash at the next login.
    public func needsRehash(_ hash: String) -> Bool {
        crypto_pwhash_str_needs_rehash(hash, operationsLimit, memoryLimit) != 0
    }
}
