public import RampartModels

/// AUTH-2: at least 12 characters with a lower-case letter, an upper-case letter, a digit and a
/// symbol; not a common or breached password; not containing the email's local part. Every
/// rule that fails is named, so a person fixes them all at once.
public struct PasswordPolicy: Sendable {
    public static let minimumLength = 12

    /// Lower-cased common and breached passwords: the built-in list and the configured file's.
    public let common: Set<String>
    public let maximumBytes: Int

    public init(extraCommon: Set<String> = [], maximumBytes: Int = 72) {
        common = Self.builtInCommon.union(extraCommon.map { $0.lowercased() })
        self.maximumBytes = maximumBytes
    }

    /// The rules `password` breaks, in the order people read them; empty when it passes.
    public func violations(_ password: String, email: EmailAddress?) -> [String] {
        var failed: [String] = []
        if password.count < Self.minimumLength { failed.append("at least \(Self.minimumLength) characters") }
        if password.utf8.count > maximumBytes { failed.append("at most \(maximumBytes) bytes") }
        if password.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            failed.append("no control characters")
        }
        if !password.contains(where: \.isLowercase) { failed.append("a lower-case letter") }
        if !password.contains(where: \.isUppercase) { failed.append("an upper-case letter") }
        if !password.contains(where: \.isNumber) { failed.append("a digit") }
        if !password.contains(where: { !$0.isLetter && !$0.isNumber && !$0.isWhitespace }) { failed.append("a symbol") }
        if isCommon(password) { failed.append("not a common or breached password") }
        if let local = email?.localPart, local.count >= 3, password.lowercased().contains(local) {
            failed.append("not containing your email address's name")
        }
        return failed
    }

    /// The password, or its word once the digits and symbols people tack on are removed
    /// ("Password123!" is "password"), is on the list.
    func isCommon(_ password: String) -> Bool {
        let lowered = password.lowercased()
        if common.contains(lowered) { return true }
        let core = String(lowered.drop(while: { !$0.isLetter }).reversed().drop(while: { !$0.isLetter }).reversed())
        return !core.isEmpty && common.contains(core)
    }

    /// Reads a list file: one password per line; blank lines ignored.
    public static func parseList(_ text: String) -> Set<String> {
        Set(text.split(whereSeparator: \.isNewline).map { $0.lowercased() }.filter { !$0.isEmpty })
    }

    /// The most common passwords and base words of the public breach corpora (NCSC's and
    /// SecLists' top lists), lower-cased: with the digits and symbols stripped, most long
    /// common passwords come down to one of these words.
    static let builtInCommon: Set<String> = [
        "123456", "password", "12345678", "qwerty", "123456789", "12345", "1234", "111111", "1234567", "dragon", "123123",
        "baseball", "abc123", "football", "monkey", "letmein", "696969", "shadow", "master", "666666", "qwertyuiop", "123321",
        "mustang", "1234567890", "michael", "654321", "superman", "1qaz2wsx", "7777777", "121212", "000000", "qazwsx", "123qwe",
        "killer", "trustno", "trustno1", "jordan", "jennifer", "zxcvbnm", "asdfgh", "hunter", "buster", "soccer", "harley",
        "batman", "andrew", "tigger", "sunshine", "iloveyou", "fuckme", "charlie", "robert", "thomas", "hockey", "ranger",
        "daniel", "starwars", "klaster", "112233", "george", "computer", "michelle", "jessica", "pepper", "zxcvbn", "555555",
        "11111111", "131313", "freedom", "777777", "pass", "maggie", "159753", "aaaaaa", "ginger", "princess", "joshua",
        "cheese", "amanda", "summer", "love", "ashley", "nicole", "chelsea", "biteme", "matthew", "access", "yankees",
        "987654321", "dallas", "austin", "thunder", "taylor", "matrix", "mobilemail", "mom", "monitor", "monitoring",
        "montana", "moon", "moscow", "welcome", "admin", "administrator", "login", "passw0rd", "p@ssw0rd", "p@ssword",
        "changeme", "secret", "qwerty123", "qwertyuiop123", "q1w2e3r4t5y6", "1q2w3e4r5t6y", "1q2w3e4r", "zaq12wsx",
        "asdfghjkl", "asdfasdf", "password1", "password123", "passwordpassword", "iloveyou123", "welcome123", "letmein123",
        "football123", "baseball123", "sunshine123", "princess123", "dragon123", "monkey123", "master123", "superman123",
        "whatever", "hello", "hellohello", "helloworld", "test", "testing", "test123", "guest", "default", "root", "toor",
        "company", "summer2024", "winter2024", "spring2024", "autumn2024", "summer2025", "winter2025", "spring2025",
        "autumn2025", "summer2026", "winter2026", "spring2026", "autumn2026", "january", "february", "march", "april",
        "june", "july", "august", "september", "october", "november", "december", "monday", "friday", "passpass",
        "correcthorsebatterystaple", "trustnoone", "letmeinnow", "opensesame", "abcdefgh", "abcdefghijkl", "abcd1234",
        "qwer1234", "azerty", "azertyuiop", "azerty123", "motdepasse", "soleil", "bonjour", "loulou", "doudou", "chouchou",
        "passwort", "hallo", "schatz", "contraseña", "contrasena", "senha", "qwertz", "lovely", "flower", "angel", "babygirl",
    ]
}
