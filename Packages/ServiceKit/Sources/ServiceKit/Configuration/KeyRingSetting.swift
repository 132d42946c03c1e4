public import SodiumKit

extension EnvironmentReader {
    /// A required key ring under `key`: `<key id>:<base64 of 32 bytes>[,…]`, the first current.
    /// A missing or malformed one is reported as a problem (start-up then stops) and a throwaway
    /// ring stands in until then.
    public mutating func keyRing(_ key: String) -> KeyRing {
        let text = requiredString(key, secret: true)
        if !text.isEmpty {
            do {
                return try KeyRing(parsing: text)
            } catch {
                problem("\(Self.variableName(key)) must be <key id>:<base64 of 32 bytes>[,…], the first current: \(error)")
            }
        }
        return try! KeyRing(currentKeyID: "unset", keys: ["unset": .generate()])
    }
}
