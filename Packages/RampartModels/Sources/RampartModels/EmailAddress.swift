/// An email address as sign-up accepts it: one @, a plausible local part, a domain of at least
/// two labels of letters, digits and hyphens. Lower-cased: addresses compare without case.
public struct EmailAddress: Sendable, Equatable, CustomStringConvertible {
    public let localPart: String
    public let domain: String

    public init?(_ text: String) {
        let lowered = text.lowercased()
        let parts = lowered.split(separator: "@", omittingEmptySubsequences: false)
        guard lowered.utf8.count <= 254, parts.count == 2 else { return nil }
        let local = parts[0]
        let domain = parts[1].hasSuffix(".") ? parts[1].dropLast() : parts[1]
        let localAllowed = Set("abcdefghijklmnopqrstuvwxyz0123456789.!#$%&'*+/=?^_`{|}~-")
        guard (1...64).contains(local.utf8.count), local.allSatisfy(localAllowed.contains), !local.hasPrefix("."), !local.hasSuffix("."),
            !local.contains("..")
        else { return nil }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        let labelAllowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-")
        guard labels.count >= 2, domain.utf8.count <= 253,
            labels.allSatisfy({ (1...63).contains($0.utf8.count) && $0.allSatisfy(labelAllowed.contains) && !$0.hasPrefix("-") && !$0.hasSuffix("-") }
            ),
            labels.last!.allSatisfy(\.isLetter)
        else { return nil }
        localPart = String(local)
        self.domain = String(domain)
    }

    public var description: String { "\(localPart)@\(domain)" }
}
