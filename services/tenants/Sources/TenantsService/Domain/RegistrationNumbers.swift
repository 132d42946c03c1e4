/// Business registration numbers by country (TEN-3): a sign-up must name one that is well formed
/// and passes its published check digits. One validator per country in `validators`; add a
/// country by adding an entry.
public enum RegistrationNumbers {
    /// A number that passed: its compact form (no spaces, dots, dashes or slashes; upper case),
    /// which is what is stored and compared.
    public struct Accepted: Sendable, Equatable {
        public let country: String
        public let kind: String
        public let number: String
    }

    public enum Rejection: Error, Sendable, Equatable, CustomStringConvertible {
        case unsupportedCountry(String)
        case malformed(kind: String, expected: String)
        case checksum(kind: String)

        public var description: String {
            switch self {
            case .unsupportedCountry(let country):
                "registrations from country \(country) are not accepted yet (supported: \(RegistrationNumbers.countries.joined(separator: ", ")))"
            case .malformed(let kind, let expected): "the \(kind) must be \(expected)"
            case .checksum(let kind): "the \(kind)'s check digits do not match: check for a typing error"
            }
        }
    }

    struct Validator: Sendable {
        let kind: String
        /// Nil when the compact number is valid, else why not.
        let check: @Sendable (String) -> Rejection?
    }

    /// ISO 3166-1 alpha-2 codes with a validator.
    public static var countries: [String] { validators.keys.sorted() }

    public static func validate(_ number: String, country: String) throws(Rejection) -> Accepted {
        let country = country.uppercased()
        guard let validator = validators[country] else { throw .unsupportedCountry(country) }
        let compact = String(number.uppercased().unicodeScalars.filter { !" .-/,\u{A0}".unicodeScalars.contains($0) })
        guard compact.utf8.count <= 32, compact.utf8.allSatisfy({ isDigit($0) || isLetter($0) }) else {
            throw .malformed(kind: validator.kind, expected: "letters and digits only")
        }
        if let rejection = validator.check(compact) { throw rejection }
        return Accepted(country: country, kind: validator.kind, number: compact)
    }

    static let validators: [String: Validator] = {
        var table: [String: Validator] = [
            "SN": Validator(kind: "NINEA", check: ninea),
            // A SIRET, or the French VAT number when that is what the company has to hand.
            "FR": Validator(kind: "SIRET") { $0.hasPrefix("FR") ? EUVAT.france(String($0.dropFirst(2))) : siret($0) },
            "US": Validator(kind: "EIN", check: ein),
            "IN": Validator(kind: "CIN", check: cin),
        ]
        for (country, vat) in EUVAT.memberStates where table[country] == nil {
            table[country] = Validator(kind: "VAT number") { number in
                // With or without the VAT prefix (EL for Greece).
                let body = number.hasPrefix(vat.prefix) ? String(number.dropFirst(vat.prefix.count)) : number
                return vat.check(body)
            }
        }
        return table
    }()

    // MARK: Senegal

    /// NINEA: 7 digits (or 9 with leading zeros) whose digits weighted 1, 2, 1, 2… sum to a
    /// multiple of 10, optionally followed by the 3-character COFI (tax status 0-2, tax centre
    /// letter, legal form digit).
    static func ninea(_ number: String) -> Rejection? {
        let expected = "7 or 9 digits, optionally followed by the COFI (e.g. 3067221 2G2)"
        var digits = Array(number.utf8)
        if digits.count > 9 {
            let cofi = Array(digits.suffix(3))
            digits.removeLast(3)
            guard "012".utf8.contains(cofi[0]), "ABCDEFGHJKLMNPQRSTUVWZ".utf8.contains(cofi[1]), isDigit(cofi[2]) else {
                return .malformed(kind: "NINEA", expected: expected)
            }
        }
        guard [7, 9].contains(digits.count), digits.allSatisfy(isDigit) else { return .malformed(kind: "NINEA", expected: expected) }
        let padded = Array(repeating: UInt8(ascii: "0"), count: 9 - digits.count) + digits
        let sum = padded.enumerated().reduce(0) { $0 + value($1.element) * ($1.offset % 2 == 0 ? 1 : 2) }
        return sum % 10 == 0 ? nil : .checksum(kind: "NINEA")
    }

    // MARK: France

    /// La Poste's SIREN: its establishments' SIRETs outgrew the Luhn key, so their digits sum
    /// to a multiple of 5 instead.
    static let laPosteSIREN = "356000000"

    /// SIRET: the 9-digit SIREN and a 5-digit establishment number, Luhn over all 14 digits
    /// (and over the SIREN).
    static func siret(_ number: String) -> Rejection? {
        let digits = Array(number.utf8)
        guard digits.count == 14, digits.allSatisfy(isDigit) else { return .malformed(kind: "SIRET", expected: "14 digits") }
        if number.hasPrefix(laPosteSIREN) {
            // The head office (35600000000048) kept its Luhn key.
            return digits.reduce(0) { $0 + value($1) } % 5 == 0 || luhn(digits) ? nil : .checksum(kind: "SIRET")
        }
        return luhn(digits) && luhn(digits.prefix(9)) ? nil : .checksum(kind: "SIRET")
    }

    // MARK: United States

    /// The EIN prefixes the IRS assigns ("How EINs are assigned and valid EIN prefixes").
    static let einPrefixes: Set<Int> = Set(
        [1...6, 10...16, 20...27, 30...39, 40...48, 50...68, 71...77, 80...88, 90...95, 98...99].flatMap { Array($0) }
    )

    /// EIN: 9 digits whose first two are a prefix the IRS assigns (there are no check digits).
    static func ein(_ number: String) -> Rejection? {
        let digits = Array(number.utf8)
        guard digits.count == 9, digits.allSatisfy(isDigit) else { return .malformed(kind: "EIN", expected: "9 digits (12-3456789)") }
        guard einPrefixes.contains(value(digits[0]) * 10 + value(digits[1])) else {
            return .malformed(kind: "EIN", expected: "9 digits starting with a prefix the IRS assigns")
        }
        return nil
    }

    // MARK: India

    /// State and union-territory codes of the Registrars of Companies, old and new.
    static let cinStates: Set<String> = [
        "AN", "AP", "AR", "AS", "BR", "CH", "CT", "DD", "DL", "DN", "GA", "GJ", "HP", "HR", "JH", "JK", "KA", "KL", "LA", "LD", "MH",
        "ML", "MN", "MP", "MZ", "NL", "OR", "PB", "PY", "RJ", "SK", "TG", "TN", "TR", "UP", "UR", "UT", "WB",
    ]
    /// Company classes: public/private limited, government, state government, foreign, not for
    /// profit (section 8), one-person, unlimited, guarantee…
    static let cinClasses: Set<String> = ["FLC", "FTC", "GAP", "GAT", "GOI", "NPL", "OPC", "PLC", "PTC", "SGC", "ULL", "ULT"]

    /// CIN: listed (L) or unlisted (U), 5-digit industry code, state, year of incorporation,
    /// company class, 6-digit registration number: 21 characters, no check digit.
    static func cin(_ number: String) -> Rejection? {
        let text = Array(number)
        let shape = "21 characters: L or U, 5 digits, a state code, the year, the company class, 6 digits (e.g. L17110MH1973PLC019786)"
        guard text.count == 21, "LU".contains(text[0]) else { return .malformed(kind: "CIN", expected: shape) }
        func digits(_ range: Range<Int>) -> Int? { text[range].allSatisfy({ $0.isASCII && $0.isNumber }) ? Int(String(text[range])) : nil }
        guard digits(1..<6) != nil, cinStates.contains(String(text[6..<8])), let year = digits(8..<12), (1850...2100).contains(year),
            cinClasses.contains(String(text[12..<15])), digits(15..<21) != nil
        else {
            return .malformed(kind: "CIN", expected: shape)
        }
        return nil
    }

    // MARK: Helpers

    static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
    static func isLetter(_ byte: UInt8) -> Bool { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) }
    static func value(_ digit: UInt8) -> Int { Int(digit) - 48 }

    /// Luhn over ASCII digits: from the right, every second digit doubled (minus 9 past 9).
    static func luhn(_ digits: some BidirectionalCollection<UInt8>) -> Bool {
        var sum = 0
        for (offset, digit) in digits.reversed().enumerated() {
            let doubled = value(digit) * (offset % 2 == 1 ? 2 : 1)
            sum += doubled > 9 ? doubled - 9 : doubled
        }
        return sum % 10 == 0
    }
}
