/// EU VAT numbers (VIES formats) for all 27 member states, with the published check-digit
/// algorithms where the state has one that is public; the rest are checked for shape only.
enum EUVAT {
    struct State: Sendable {
        /// The VAT prefix: the ISO code, except EL for Greece.
        let prefix: String
        /// Checks the number without its prefix.
        let check: @Sendable (String) -> RegistrationNumbers.Rejection?
    }

    /// Keyed by ISO 3166-1 alpha-2 country code.
    static let memberStates: [String: State] = [
        "AT": State(prefix: "AT", check: austria),
        "BE": State(prefix: "BE", check: belgium),
        "BG": State(prefix: "BG", check: shape("9 or 10 digits") { digits($0, count: 9...10) }),
        "CY": State(
            prefix: "CY",
            check: shape("8 digits and a letter") { $0.count == 9 && digits(String($0.prefix(8)), count: 8...8) && letter($0.last!) }
        ),
        "CZ": State(prefix: "CZ", check: shape("8 to 10 digits") { digits($0, count: 8...10) }),
        "DE": State(prefix: "DE", check: weighted("9 digits", count: 9) { mod11_10($0) && $0[0] != 0 }),
        "DK": State(prefix: "DK", check: weighted("8 digits", count: 8) { $0[0] != 0 && dot($0, [2, 7, 6, 5, 4, 3, 2, 1]) % 11 == 0 }),
        "EE": State(
            prefix: "EE",
            check: weighted("9 digits starting with 10", count: 9) { $0[0] == 1 && $0[1] == 0 && dot($0, [3, 7, 1, 3, 7, 1, 3, 7, 1]) % 10 == 0 }
        ),
        "ES": State(prefix: "ES", check: spain),
        "FI": State(prefix: "FI", check: weighted("8 digits", count: 8) { elevenMinus(dot($0.prefix(7), [7, 9, 10, 5, 8, 4, 2])) == $0[7] }),
        "FR": State(prefix: "FR", check: france),
        "GR": State(prefix: "EL", check: shape("9 digits") { digits($0, count: 9...9) }),
        "HR": State(prefix: "HR", check: weighted("11 digits", count: 11) { mod11_10($0) }),
        "HU": State(prefix: "HU", check: weighted("8 digits", count: 8) { dot($0, [9, 7, 3, 1, 9, 7, 3, 1]) % 10 == 0 }),
        "IE": State(prefix: "IE", check: ireland),
        "IT": State(prefix: "IT", check: italy),
        "LT": State(prefix: "LT", check: shape("9 or 12 digits") { digits($0, count: 9...9) || digits($0, count: 12...12) }),
        "LU": State(prefix: "LU", check: weighted("8 digits", count: 8) { number($0.prefix(6)) % 89 == number($0.suffix(2)) }),
        "LV": State(prefix: "LV", check: shape("11 digits") { digits($0, count: 11...11) }),
        "MT": State(prefix: "MT", check: weighted("8 digits", count: 8) { $0[0] != 0 && dot($0, [3, 4, 6, 7, 8, 9, 10, 1]) % 37 == 0 }),
        "NL": State(prefix: "NL", check: netherlands),
        "PL": State(prefix: "PL", check: weighted("10 digits", count: 10) { dot($0.prefix(9), [6, 5, 7, 2, 3, 4, 5, 6, 7]) % 11 == $0[9] }),
        "PT": State(
            prefix: "PT",
            check: weighted("9 digits", count: 9) { $0[0] != 0 && elevenMinus(dot($0.prefix(8), [9, 8, 7, 6, 5, 4, 3, 2])) % 10 == $0[8] }
        ),
        "RO": State(prefix: "RO", check: shape("2 to 10 digits") { digits($0, count: 2...10) && $0.first != "0" }),
        "SE": State(prefix: "SE", check: weighted("12 digits ending in 01", count: 12) { $0[10] == 0 && $0[11] == 1 && luhn($0.prefix(10)) }),
        "SI": State(
            prefix: "SI",
            check: weighted("8 digits", count: 8) {
                $0[0] != 0 && (11 - dot($0.prefix(7), [8, 7, 6, 5, 4, 3, 2]) % 11) % 11 % 10 == $0[7]
                    && dot($0.prefix(7), [8, 7, 6, 5, 4, 3, 2]) % 11 != 0
            }
        ),
        "SK": State(
            prefix: "SK",
            check: weighted("10 digits", count: 10) { $0[0] != 0 && [2, 3, 4, 7, 8, 9].contains($0[2]) && number($0) % 11 == 0 }
        ),
    ]

    static let kind = "VAT number"

    // MARK: States with more than one shape

    /// U and 8 digits; the key is a Luhn variant offset by 4.
    static func austria(_ number: String) -> RegistrationNumbers.Rejection? {
        guard number.first == "U", let values = values(String(number.dropFirst())), values.count == 8 else {
            return .malformed(kind: kind, expected: "U followed by 8 digits")
        }
        let sum = values.prefix(7).enumerated().reduce(0) { sum, item in
            let weighted = item.element * (item.offset % 2 == 1 ? 2 : 1)
            return sum + weighted / 10 + weighted % 10
        }
        return (10 - (sum + 4) % 10) % 10 == values[7] ? nil : .checksum(kind: kind)
    }

    /// 10 digits starting with 0 or 1 (9 digits: the older form, a leading 0 implied); the last
    /// two are 97 minus the first eight modulo 97.
    static func belgium(_ number: String) -> RegistrationNumbers.Rejection? {
        guard var values = values(number), (9...10).contains(values.count) else { return .malformed(kind: kind, expected: "10 digits") }
        if values.count == 9 { values.insert(0, at: 0) }
        guard values[0] <= 1 else { return .malformed(kind: kind, expected: "10 digits starting with 0 or 1") }
        return 97 - self.number(values.prefix(8)) % 97 == self.number(values.suffix(2)) ? nil : .checksum(kind: kind)
    }

    /// Two key characters and the 9-digit SIREN. A numeric key is (12 + 3 × SIREN) mod 97; a
    /// key with letters uses the later scheme over the 34-character alphabet.
    static func france(_ number: String) -> RegistrationNumbers.Rejection? {
        let alphabet = Array("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ")
        let text = Array(number)
        guard text.count == 11, let key0 = alphabet.firstIndex(of: text[0]), let key1 = alphabet.firstIndex(of: text[1]),
            let siren = values(String(text[2...]))
        else {
            return .malformed(kind: kind, expected: "FR, two key characters and the 9-digit SIREN")
        }
        let sirenValue = self.number(siren)
        if key0 < 10, key1 < 10 {
            return key0 * 10 + key1 == (12 + 3 * (sirenValue % 97)) % 97 ? nil : .checksum(kind: kind)
        }
        let check = key0 < 10 ? key0 * 24 + key1 - 10 : key0 * 34 + key1 - 100
        return (sirenValue + 1 + check / 11) % 11 == check % 11 ? nil : .checksum(kind: kind)
    }

    /// 7 digits and one or two letters, or the older digit, letter (or + or *), 5 digits and a
    /// letter; the check letter is a weighted sum modulo 23 (the second letter, A-I, counts ×9).
    static func ireland(_ number: String) -> RegistrationNumbers.Rejection? {
        let text = Array(number)
        let alphabet = Array("WABCDEFGHIJKLMNOPQRSTUV")
        let expected = "7 digits and one or two letters (e.g. 6433435F)"
        var digits: [Int]
        var extra = 0
        if (8...9).contains(text.count), let modern = values(String(text[0..<7])), letter(text[7]) {
            digits = modern
            if text.count == 9 {
                guard let second = alphabet.firstIndex(of: text[8]) else { return .malformed(kind: kind, expected: expected) }
                extra = second
            }
        } else if text.count == 8, let first = values(String(text[0])), letter(text[1]) || "+*".contains(text[1]),
            let rest = values(String(text[2..<7])), letter(text[7])
        {
            digits = [0] + rest + first  // the older form reorders to 0, digits 3-7, digit 1
        } else {
            return .malformed(kind: kind, expected: expected)
        }
        let sum = dot(digits, [8, 7, 6, 5, 4, 3, 2]) + extra * 9
        return alphabet[sum % 23] == text[7] ? nil : .checksum(kind: kind)
    }

    /// 11 digits: a Luhn key over all of them, and a provincial office code 001-100, 120, 121,
    /// 888 or 999.
    static func italy(_ number: String) -> RegistrationNumbers.Rejection? {
        guard let values = values(number), values.count == 11 else { return .malformed(kind: kind, expected: "11 digits") }
        let office = self.number(values[7..<10])
        guard values.prefix(7).contains(where: { $0 != 0 }), (1...100).contains(office) || [120, 121, 888, 999].contains(office) else {
            return .malformed(kind: kind, expected: "11 digits with a valid office code")
        }
        return luhn(values) ? nil : .checksum(kind: kind)
    }

    /// 9 digits (fewer: leading zeros implied), B and 2 digits. The check is the old modulo 11
    /// over the digits or, for numbers issued since 2020, ISO 7064 modulo 97 over "NL" and the
    /// whole number.
    static func netherlands(_ number: String) -> RegistrationNumbers.Rejection? {
        let parts = number.split(separator: "B", omittingEmptySubsequences: false)
        guard parts.count == 2, var digits = values(String(parts[0])), (1...9).contains(digits.count), let suffix = values(String(parts[1])),
            suffix.count == 2
        else {
            return .malformed(kind: kind, expected: "9 digits, B and 2 digits (e.g. 004495445B01)")
        }
        digits = Array(repeating: 0, count: 9 - digits.count) + digits
        guard suffix != [0, 0] else { return .malformed(kind: kind, expected: "9 digits, B and 2 digits other than 00") }
        if dot(digits.prefix(8), [9, 8, 7, 6, 5, 4, 3, 2]) % 11 == digits[8] { return nil }
        // N = 23, L = 21, B = 11, as ISO 7064 reads letters.
        let expanded = [2, 3, 2, 1] + digits + [1, 1] + suffix
        return expanded.reduce(0) { ($0 * 10 + $1) % 97 } == 1 ? nil : .checksum(kind: kind)
    }

    /// The NIF: a DNI (8 digits and a letter), an NIE (X, Y or Z, 7 digits, a letter), a K/L/M
    /// personal number, or a company CIF (an organization letter, 7 digits and a check digit or
    /// letter).
    static func spain(_ nif: String) -> RegistrationNumbers.Rejection? {
        let text = Array(nif)
        let expected = "a DNI, NIE or CIF: 9 characters (e.g. A78109592)"
        guard text.count == 9 else { return .malformed(kind: kind, expected: expected) }
        let letters = Array("TRWAGMYFPDXBNJZSQVHLCKE")
        let middle = values(String(text[1..<8]))
        if let all = values(String(text[0..<8])), letter(text[8]) {
            return letters[number(all) % 23] == text[8] ? nil : .checksum(kind: kind)
        }
        guard let middle else { return .malformed(kind: kind, expected: expected) }
        if let prefix = "XYZ".firstIndex(of: text[0]), letter(text[8]) {
            let value = "XYZ".distance(from: "XYZ".startIndex, to: prefix) * 10_000_000 + number(middle)
            return letters[value % 23] == text[8] ? nil : .checksum(kind: kind)
        }
        if "KLM".contains(text[0]), letter(text[8]) {
            return letters[number(middle) % 23] == text[8] ? nil : .checksum(kind: kind)
        }
        guard "ABCDEFGHJNPQRSUVW".contains(text[0]) else { return .malformed(kind: kind, expected: expected) }
        let sum = middle.enumerated().reduce(0) { sum, item in
            guard item.offset % 2 == 0 else { return sum + item.element }
            let doubled = item.element * 2
            return sum + doubled / 10 + doubled % 10
        }
        let control = (10 - sum % 10) % 10
        let asDigit = Character(String(control))
        let asLetter = Array("JABCDEFGHI")[control]
        switch text[0] {
        case "A", "B", "E", "H": return text[8] == asDigit ? nil : .checksum(kind: kind)
        case "N", "P", "Q", "R", "S", "W": return text[8] == asLetter ? nil : .checksum(kind: kind)
        default: return text[8] == asDigit || text[8] == asLetter ? nil : .checksum(kind: kind)
        }
    }

    // MARK: Building blocks

    static func shape(_ expected: String, _ matches: @escaping @Sendable (String) -> Bool) -> @Sendable (String) -> RegistrationNumbers.Rejection? {
        { matches($0) ? nil : .malformed(kind: kind, expected: expected) }
    }

    /// All digits, `count` of them, then `valid` over their values.
    static func weighted(
        _ expected: String,
        count: Int,
        _ valid: @escaping @Sendable ([Int]) -> Bool
    ) -> @Sendable (String) -> RegistrationNumbers.Rejection? {
        { number in
            guard let values = values(number), values.count == count else { return .malformed(kind: kind, expected: expected) }
            return valid(values) ? nil : .checksum(kind: kind)
        }
    }

    static func values(_ text: String) -> [Int]? {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.allSatisfy(RegistrationNumbers.isDigit) else { return nil }
        return bytes.map(RegistrationNumbers.value)
    }

    static func digits(_ text: String, count: ClosedRange<Int>) -> Bool {
        values(text).map { count.contains($0.count) } ?? false
    }

    static func letter(_ character: Character) -> Bool { character.isASCII && character.isUppercase }

    static func dot(_ values: some Collection<Int>, _ weights: [Int]) -> Int { zip(values, weights).reduce(0) { $0 + $1.0 * $1.1 } }

    static func number(_ values: some Collection<Int>) -> Int { values.reduce(0) { $0 * 10 + $1 } }

    /// 11 minus the sum modulo 11, 11 counting as 0 (PT, FI; PT also turns 10 into 0, FI never
    /// issues it).
    static func elevenMinus(_ sum: Int) -> Int { (11 - sum % 11) % 11 }

    /// ISO 7064 MOD 11,10 (DE, HR): valid when the running value ends at 1.
    static func mod11_10(_ values: [Int]) -> Bool {
        values.reduce(5) { check, digit in ((check == 0 ? 10 : check) * 2 % 11 + digit) % 10 } == 1
    }

    static func luhn(_ values: some BidirectionalCollection<Int>) -> Bool {
        RegistrationNumbers.luhn(values.map { UInt8($0 + 48) })
    }
}
