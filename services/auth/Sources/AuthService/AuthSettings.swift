import NIOCore
import ServiceKit
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// auth's own configuration.
public struct AuthSettings: Sendable {
    public var passwordAlgorithm: PasswordAlgorithm
    public var passwordPolicy: PasswordPolicy
    /// Threads that hash passwords; other work never waits behind them.
    public var hashThreads: Int
    /// A registration that never completed (auth stopped half-way) is removed after this long.
    public var pendingRegistrationSeconds: Int

    public init(
        passwordAlgorithm: PasswordAlgorithm = .bcrypt(cost: PasswordAlgorithm.defaultBcryptCost),
        extraCommonPasswords: Set<String> = [],
        hashThreads: Int = System.coreCount,
        pendingRegistrationSeconds: Int = 600
    ) {
        self.passwordAlgorithm = passwordAlgorithm
        passwordPolicy = PasswordPolicy(extraCommon: extraCommonPasswords, maximumBytes: passwordAlgorithm.maximumPasswordBytes)
        self.hashThreads = hashThreads
        self.pendingRegistrationSeconds = pendingRegistrationSeconds
    }

    public enum HashName: String, CaseIterable, Sendable {
        case bcrypt, argon2id
    }

    /// `RAMPART_AUTH_PASSWORD_HASH` (bcrypt or argon2id), `RAMPART_AUTH_BCRYPT_COST` (12, never
    /// below 10), `RAMPART_AUTH_COMMON_PASSWORDS_FILE` (one password per line, added to the
    /// built-in list), `RAMPART_AUTH_HASH_THREADS` (the cores).
    public init(reader: inout EnvironmentReader) {
        let cost = reader.int("auth.bcrypt-cost", default: PasswordAlgorithm.defaultBcryptCost, range: PasswordAlgorithm.minimumBcryptCost...16)
        let algorithm: PasswordAlgorithm =
            switch reader.choice("auth.password-hash", default: HashName.bcrypt) {
            case .bcrypt: .bcrypt(cost: cost)
            case .argon2id: .argon2id(.interactive)
            }
        var extra: Set<String> = []
        if let path = reader.optionalString("auth.common-passwords-file") {
            if let data = FileManager.default.contents(atPath: path) {
                extra = PasswordPolicy.parseList(String(decoding: data, as: UTF8.self))
            } else {
                reader.problem("RAMPART_AUTH_COMMON_PASSWORDS_FILE: cannot read \(path)")
            }
        }
        self.init(
            passwordAlgorithm: algorithm,
            extraCommonPasswords: extra,
            hashThreads: reader.int("auth.hash-threads", default: System.coreCount, range: 1...256)
        )
    }
}
