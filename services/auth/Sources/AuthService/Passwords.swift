import CCrypt
public import NIOCore
import NIOPosix
import RampartModels
public import SodiumKit
import Synchronization

/// How passwords are hashed (AUTH-1): bcrypt (cost 12 by default) or argon2id. A stored hash
/// names its own algorithm and parameters, so logins verify whatever made it, and a hash made
/// with other settings than these is replaced at the next successful login.
public enum PasswordAlgorithm: Sendable, Equatable {
    case bcrypt(cost: Int)
    case argon2id(Argon2id)

    public static let defaultBcryptCost = 12
    /// SPEC AUTH-1: never below 10 outside tests (tests lower it through configuration).
    public static let minimumBcryptCost = 10

    /// bcrypt reads only the first 72 bytes of a password; rather than ignore the rest
    /// silently, the policy refuses longer passwords while bcrypt is in use.
    var maximumPasswordBytes: Int {
        switch self {
        case .bcrypt: 72
        case .argon2id: 1024
        }
    }
}

/// bcrypt through libxcrypt (`$2b$`, the OpenBSD scheme).
enum Bcrypt {
    static func hash(_ password: String, cost: Int) throws -> String {
        var setting = [CChar](repeating: 0, count: Int(CRYPT_GENSALT_OUTPUT_SIZE))
        let salt = randomBytes(16).map { CChar(bitPattern: $0) }
        guard crypt_gensalt_rn("$2b$", UInt(cost), salt, Int32(salt.count), &setting, Int32(setting.count)) != nil else {
            throw RampartError(.internal, "bcrypt: cannot make a salt for cost \(cost)")
        }
        guard let hash = crypt(password, setting: String(nullTerminated: setting)) else {
            throw RampartError(.internal, "bcrypt: hashing failed")
        }
        return hash
    }

    /// Recomputes with the stored setting and compares in constant time.
    static func verify(_ password: String, against stored: String) -> Bool {
        guard stored.hasPrefix("$2b$") || stored.hasPrefix("$2y$"), let computed = crypt(password, setting: stored) else { return false }
        return constantTimeEquals(Array(computed.utf8), Array(stored.utf8))
    }

    /// The cost a stored hash was made with (`$2b$12$…`).
    static func cost(of stored: String) -> Int? {
        let parts = stored.split(separator: "$")
        guard parts.count >= 3, ["2b", "2y"].contains(parts[0]) else { return nil }
        return Int(parts[1])
    }

    private static func crypt(_ password: String, setting: String) -> String? {
        var data = [UInt8](repeating: 0, count: MemoryLayout<crypt_data>.size)
        return data.withUnsafeMutableBytes { buffer in
            crypt_rn(password, setting, buffer.baseAddress, Int32(buffer.count)).map { String(cString: $0) }
        }
    }
}

/// Hashes and verifies passwords on a pool of threads of its own, sized to the cores: a burst
/// of logins queues there and never occupies the threads that serve other requests.
public final class PasswordHasher: Sendable {
    public let algorithm: PasswordAlgorithm
    private let pool: NIOThreadPool
    /// A hash of a random password, verified when the account does not exist, so an unknown
    /// email costs what a wrong password does (AUTH-5).
    private let decoy: String

    /// Sign-ups hashing now. Anyone may sign up, so at most `signUpSlots` hashes of theirs are
    /// in the pool at once (half its threads): a burst of sign-ups is refused for a moment rather
    /// than queued in front of the sign-ins, which keep the other half.
    private let signUps = Mutex(0)
    public let signUpSlots: Int
    /// How many of the slots are taken now.
    var signUpsHashing: Int { signUps.withLock { $0 } }

    public init(algorithm: PasswordAlgorithm, threads: Int = System.coreCount) throws {
        self.algorithm = algorithm
        pool = NIOThreadPool(numberOfThreads: max(1, threads))
        signUpSlots = max(1, threads / 2)
        pool.start()
        decoy = try Self.hash(Base64.encode(randomBytes(24)), algorithm)
    }

    deinit {
        pool.shutdownGracefully { _ in }
    }

    public func hash(_ password: String) async throws -> String {
        let algorithm = self.algorithm
        return try await pool.runIfActive { try Self.hash(password, algorithm) }
    }

    /// `hash` for a sign-up; unavailable (with a retry delay) while `signUpSlots` are taken.
    public func hashForSignUp(_ password: String) async throws -> String {
        let admitted = signUps.withLock { inFlight in
            guard inFlight < signUpSlots else { return false }
            inFlight += 1
            return true
        }
        guard admitted else {
            throw RampartError(.unavailable, "too many sign-ups at once: try again in a few seconds", details: ["retry_after_ms": "2000"])
        }
        defer { signUps.withLock { $0 -= 1 } }
        return try await hash(password)
    }

    public struct Verdict: Sendable, Equatable {
        public var matches: Bool
        /// The hash was made with other settings than the current ones: store a new one.
        public var needsRehash: Bool
    }

    /// Verifies against `stored`, or against the decoy when there is no stored hash: the same
    /// work either way, and never a match.
    public func verify(_ password: String, against stored: String?) async throws -> Verdict {
        let algorithm = self.algorithm
        let decoy = self.decoy
        return try await pool.runIfActive {
            guard let stored else {
                _ = Self.matches(password, decoy)
                return Verdict(matches: false, needsRehash: false)
            }
            let matches = Self.matches(password, stored)
            return Verdict(matches: matches, needsRehash: matches && Self.needsRehash(stored, algorithm))
        }
    }

    static func hash(_ password: String, _ algorithm: PasswordAlgorithm) throws -> String {
        switch algorithm {
        case .bcrypt(let cost): try Bcrypt.hash(password, cost: cost)
        case .argon2id(let parameters): try parameters.hash(password)
        }
    }

    static func matches(_ password: String, _ stored: String) -> Bool {
        stored.hasPrefix("$argon2id$") ? Argon2id.verify(password, against: stored) : Bcrypt.verify(password, against: stored)
    }

    static func needsRehash(_ stored: String, _ algorithm: PasswordAlgorithm) -> Bool {
        switch algorithm {
        case .bcrypt(let cost): Bcrypt.cost(of: stored) != cost
        case .argon2id(let parameters): !stored.hasPrefix("$argon2id$") || parameters.needsRehash(stored)
        }
    }
}
