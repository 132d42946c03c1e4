public import RampartModels

#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// Who makes a call, as the principal header names them: `user:<id>`, `api_key:<id>` or
/// `system:<service>`. Parsed once, where the header is read (`CallContext`), so handlers match
/// on the kind instead of taking the text apart.
public enum Principal: Sendable, Hashable, CustomStringConvertible {
    case user(String)
    case apiKey(String)
    case service(String)

    /// A signed-in person.
    public init(user: UUID) {
        self = .user(user.uuidString.lowercased())
    }

    /// A service acting on its own.
    public init(service: ServiceName) {
        self = .service(service.rawValue)
    }

    /// nil unless `text` is a kind and 1 to 128 of A-Z a-z 0-9 . _ : -.
    public init?(_ text: String) {
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let id = String(text[text.index(after: colon)...])
        guard CallContext.isValidToken(id, maximumLength: 128) else { return nil }
        switch text[..<colon] {
        case "user": self = .user(id)
        case "api_key": self = .apiKey(id)
        case "system": self = .service(id)
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .user(let id): "user:\(id)"
        case .apiKey(let id): "api_key:\(id)"
        case .service(let name): "system:\(name)"
        }
    }

    /// The person's ID, when this is a person named by a UUID (as auth issues them).
    public var userID: UUID? {
        guard case .user(let id) = self else { return nil }
        return UUID(uuidString: id)
    }

    /// The API key's ID, when this is a key named by a UUID.
    public var apiKeyID: UUID? {
        guard case .apiKey(let id) = self else { return nil }
        return UUID(uuidString: id)
    }

    public var isService: Bool {
        if case .service = self { true } else { false }
    }
}
