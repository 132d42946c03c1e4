public import RampartModels
public import SodiumKit
import SwiftProtobuf

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Account tokens on their way to the mail sender (AUTH-10; issue 26, finding 6). auth and
/// tenants seal a reset, verification or invitation token to the mail sender's public key
/// before it goes on `rampart.events.mail.<service>`: a durable consumer's filter is in the
/// request body, where NATS permissions cannot see it, so any service may read that stream, and
/// what it reads there must not sign anyone in. The seal also binds the token to its request
/// (`Rampart_V1_MailToken`): the sender refuses a sealed token copied into another request, say
/// one to the reader's own address.
public enum MailTokens {
    /// Puts `token`, sealed to `key`, into `mail`, whose event ID, template and recipient are
    /// already set (they are sealed with it).
    public static func seal(_ token: String, into mail: inout Rampart_V1_MailRequest, by publisher: ServiceName, to key: SealedBox.PublicKey) {
        var sealed = Rampart_V1_MailToken()
        sealed.token = token
        sealed.publisher = publisher.subjectToken
        sealed.eventID = mail.eventID
        sealed.template = mail.template
        sealed.to = mail.to
        // Serialising a message of strings cannot fail.
        mail.sealedToken = Data(key.seal(try! sealed.serializedBytes()))
    }

    public enum Refusal: Error, Equatable, CustomStringConvertible {
        /// Sealed to a key this sender does not hold (yet): a key rotation half-way through.
        case unknownKey(String)
        /// Changed, truncated, or sealed to another key pair.
        case unreadable
        /// Sealed for another request, or on another service's subject.
        case sealedForAnother(String)

        public var description: String {
            switch self {
            case .unknownKey(let id): "its token is sealed to key \(id.prefix(64).debugDescription), which this sender does not hold"
            case .unreadable: "its sealed token does not open"
            case .sealedForAnother(let field): "its token was sealed for another mail (\(field) differs)"
            }
        }
    }

    /// The token in `mail`, which came on `publisher`'s subject; nil when it carries none.
    public static func open(
        _ mail: Rampart_V1_MailRequest,
        publishedBy publisher: String,
        with keys: SealedBox.SecretKeys
    ) throws(Refusal) -> String? {
        guard !mail.sealedToken.isEmpty else { return nil }
        let sealed: Rampart_V1_MailToken
        do {
            sealed = try Rampart_V1_MailToken(serializedBytes: try keys.open(Array(mail.sealedToken)))
        } catch SodiumError.unknownKey(let id) {
            throw .unknownKey(id)
        } catch {
            throw .unreadable
        }
        // The most telling difference first: a copy to another address is that, whatever else.
        for (field, matches) in [
            ("to", sealed.to == mail.to), ("template", sealed.template == mail.template),
            ("publisher", sealed.publisher == publisher), ("event_id", sealed.eventID == mail.eventID),
        ] where !matches {
            throw .sealedForAnother(field)
        }
        return sealed.token
    }

    /// A public key whose secret half is forgotten at once: the default of settings made in
    /// code, until the deployment's key is set (nothing sealed to it can be opened).
    public static func throwawayKey() -> SealedBox.PublicKey {
        try! SealedBox.SecretKeys(parsing: SealedBox.SecretKeys.generate(id: "unset")).currentPublicKey
    }
}

extension EnvironmentReader {
    /// `RAMPART_MAIL_TOKEN_PUBLIC_KEY` (required; auth and tenants): the mail sender's public key
    /// to seal account tokens to, `<key id>:<base64 of 32 bytes>`.
    public mutating func mailTokenPublicKey() -> SealedBox.PublicKey {
        let text = requiredString("mail.token-public-key")
        if !text.isEmpty {
            do {
                return try SealedBox.PublicKey(parsing: text)
            } catch {
                problem("RAMPART_MAIL_TOKEN_PUBLIC_KEY must be <key id>:<base64 of a 32-byte X25519 public key>: \(error)")
            }
        }
        return MailTokens.throwawayKey()
    }

    /// `RAMPART_MAIL_TOKEN_KEYS` (required; mail): the secret keys that open them,
    /// `<key id>:<base64 of 32 bytes>[,…]`, the first the one whose public key the others hold.
    public mutating func mailTokenKeys() -> SealedBox.SecretKeys {
        let text = requiredString("mail.token-keys", secret: true)
        if !text.isEmpty {
            do {
                return try SealedBox.SecretKeys(parsing: text)
            } catch {
                problem("RAMPART_MAIL_TOKEN_KEYS must be <key id>:<base64 of a 32-byte X25519 secret key>[,…], the first current: \(error)")
            }
        }
        return try! SealedBox.SecretKeys(parsing: SealedBox.SecretKeys.generate(id: "unset"))
    }
}
