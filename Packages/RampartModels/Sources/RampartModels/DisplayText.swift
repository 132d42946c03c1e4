/// Text people type and others read: one trim and one rule for names, used by every service.
extension StringProtocol {
    /// Without white space at either end.
    public var trimmingWhitespace: String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}

/// `text` without surrounding white space, when that is 1 to `maximum` characters and holds no
/// control character and no bidirectional override (which would let a name show as another):
/// a name people will see (a person's, an organization's, an API key's).
public func displayName(_ text: String, maximum: Int) -> String? {
    let name = text.trimmingWhitespace
    guard (1...maximum).contains(name.count),
        !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || bidiControls.contains($0.value) })
    else { return nil }
    return name
}

/// U+061C, U+200E, U+200F, U+202A…U+202E, U+2066…U+2069.
private let bidiControls: Set<UInt32> = [0x061C, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069]
