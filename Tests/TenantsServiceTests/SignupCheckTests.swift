import Foundation
import RampartModels
import ServiceKit
import ServicesTestSupport
import Testing

@testable import TenantsService

/// TEN-3..5 without a running service: registration numbers, email domains, Starter claims.
/// Valid numbers are real ones published by registries and companies; each invalid one is a
/// valid one with one digit changed.
@Suite("TEN-3 registration numbers, TEN-4 disposable domains, TEN-5 Starter claims")
struct SignupCheckTests {
    static let valid: [(country: String, number: String)] = [
        // Senegal, NINEA (with and without the COFI)
        ("SN", "3067221"), ("SN", "30672212G2"), ("SN", "3067221 2G2"), ("SN", "0015041"), ("SN", "004912269"), ("SN", "2079376/2/G/3"),
        // France, SIRET (INSEE), La Poste's, and a French VAT number
        ("FR", "732 829 320 00074"), ("FR", "44126652500019"), ("FR", "30206838200050"), ("FR", "35600000000048"),
        ("FR", "356 000 000 09075"), ("FR", "35600000049837"), ("FR", "FR40303265045"), ("FR", "FRK7399859412"),
        // United States, EIN
        ("US", "94-2404110"), ("US", "91-1144442"), ("US", "61-1767919"), ("US", "20-3456789"),
        // India, CIN
        ("IN", "L17110MH1973PLC019786"), ("IN", "L85110KA1981PLC013115"), ("IN", "L22210MH1995PLC084781"), ("IN", "U72200KA2008PTC045981"),
        // EU VAT numbers, with and without the prefix
        ("DE", "DE136308783"), ("DE", "DE 811 363 057"), ("DE", "129304291"), ("DE", "DE812847601"),
        ("IT", "IT00743110157"), ("IT", "IT 02087050155"), ("IT", "12920760159"),
        ("ES", "ESA78109592"), ("ES", "ES B64240914"), ("ES", "ES 54362315K"), ("ES", "ES X5277343Q"), ("ES", "ES Q-2818015-F"),
        ("ES", "ES R9600075G"),
        ("NL", "NL004495445B01"), ("NL", "NL 806753742B01"), ("NL", "NL001162938B28"), ("NL", "NL4495445B01"),
        ("BE", "BE0202.239.951"), ("BE", "BE 0402 918 402"), ("BE", "BE0428759497"), ("BE", "BE413562567"),
        ("AT", "ATU13585627"), ("AT", "ATU 142 43 102"), ("DK", "DK 13 20 24 35"), ("FI", "FI 20774740"), ("LU", "LU 10059929"),
        ("PL", "PL 5211754253"), ("PT", "PT 502448911"), ("SE", "SE 556058115801"), ("SI", "SI 26808498"), ("HU", "HU 10672101"),
        ("EE", "EE 100931558"), ("MT", "MT 17025737"), ("SK", "SK 2022193459"), ("IE", "IE 6433435F"), ("IE", "IE 8D79739I"),
        ("IE", "IE 6433435IH"), ("GR", "EL 094012834"), ("CZ", "CZ 25123891"), ("LT", "LT 100001354118"), ("LV", "LV 40003189718"),
        ("RO", "RO 11358544"), ("BG", "BG 103873594"), ("CY", "CY 10246672X"), ("HR", "HR 33392005961"),
    ]

    /// One digit changed in a valid number: the check digits catch it.
    static let checksumFailures: [(country: String, number: String)] = [
        ("SN", "3067222"), ("FR", "73282932000075"), ("FR", "44126652500018"), ("FR", "35600000049838"), ("FR", "FR41303265045"),
        ("FR", "FRK7399859312"), ("DE", "DE136308784"), ("DE", "DE125014855"), ("IT", "IT00743110158"), ("ES", "ESA78109593"),
        ("ES", "ES 54362415K"), ("NL", "NL004495446B01"), ("BE", "BE0202.239.952"), ("AT", "ATU13585628"), ("PL", "PL5211754254"),
        ("PT", "PT502448912"), ("SE", "SE556058115901"), ("DK", "DK13202436"), ("FI", "FI20774741"), ("LU", "LU10059928"),
        ("SI", "SI26808499"), ("HU", "HU10672102"), ("EE", "EE100931559"), ("MT", "MT17025738"), ("SK", "SK2022193458"),
        ("IE", "IE6433436F"), ("HR", "HR33392005962"),
    ]

    static let malformed: [(country: String, number: String)] = [
        ("FR", "7328293200007"), ("FR", "7328293200007A"), ("US", "07-1234567"), ("US", "00-1234567"), ("US", "12345678"),
        ("IN", "L17110MH1973XYZ019786"), ("IN", "L17110ZZ1973PLC019786"), ("IN", "X17110MH1973PLC019786"), ("IN", "L17110MH1973PLC01978"),
        ("SN", "12345"), ("SN", "12345670I0"), ("DE", "DE12345678"), ("NL", "NL004495445B00"), ("IT", "IT00687129980"),
        ("FR", "'; DROP TABLE tenants; --"), ("DE", String(repeating: "9", count: 200)), ("ES", "ESÅ78109592"),
    ]

    @Test("real registration numbers pass, in every supported country")
    func validNumbers() throws {
        for (country, number) in Self.valid {
            #expect(throws: Never.self, "\(country) \(number)") { try RegistrationNumbers.validate(number, country: country) }
        }
        let accepted = try RegistrationNumbers.validate("732 829 320 00074", country: "fr")
        #expect(accepted == .init(country: "FR", kind: "SIRET", number: "73282932000074"))
        #expect(Set(EUVAT.memberStates.keys).count == 27)
    }

    @Test("one digit changed fails the check digits")
    func checksums() {
        for (country, number) in Self.checksumFailures {
            #expect(throws: RegistrationNumbers.Rejection.self, "\(country) \(number)") { try RegistrationNumbers.validate(number, country: country) }
            do {
                _ = try RegistrationNumbers.validate(number, country: country)
            } catch {
                guard case .checksum = error else {
                    Issue.record("\(country) \(number): expected a check-digit failure, got \(error)")
                    continue
                }
            }
        }
    }

    @Test("malformed numbers and unsupported countries are refused with what was expected")
    func malformedNumbers() {
        for (country, number) in Self.malformed {
            do {
                let accepted = try RegistrationNumbers.validate(number, country: country)
                Issue.record("\(country) \(number) accepted as \(accepted)")
            } catch {
                guard case .malformed = error else {
                    Issue.record("\(country) \(number): expected malformed, got \(error)")
                    continue
                }
            }
        }
        #expect(throws: RegistrationNumbers.Rejection.unsupportedCountry("ZZ")) { try RegistrationNumbers.validate("123", country: "ZZ") }
        #expect(RegistrationNumbers.Rejection.unsupportedCountry("ZZ").description.contains("SN"))
    }

    @Test("disposable domains, their subdomains and a configured list are recognised")
    func disposableDomains() {
        let domains = EmailDomains(extraDisposable: EmailDomains.parseList("# ours\nthrowaway.example\n\n  Burner.Test  # comment\n"))
        for domain in [
            "mailinator.com", "sub.mailinator.com", "tempmail.com", "temp-mail.org", "guerrillamail.com", "sharklasers.com", "throwaway.example",
            "burner.test",
        ] {
            #expect(domains.isDisposable(domain), "\(domain)")
        }
        for domain in ["example.com", "gmail.com", "notmailinator.co", "mailinator.com.example.org"] {
            #expect(!domains.isDisposable(domain), "\(domain)")
        }
    }

    @Test("a company domain holds one Starter claim; free mail holds one per mailbox, dots and tags ignored")
    func starterClaims() throws {
        let domains = EmailDomains()
        func claim(_ text: String) throws -> String { domains.starterClaim(try #require(EmailAddress(text))) }
        #expect(try claim("alice@acme.example") == "acme.example")
        #expect(try claim("bob@ACME.example") == "acme.example")
        #expect(try claim("Jane.Doe+trial@gmail.com") == "janedoe@gmail.com")
        #expect(try claim("janedoe@googlemail.com") == "janedoe@gmail.com")
        #expect(try claim("jane+x@outlook.com") == "jane@outlook.com")
        #expect(try claim("jane.doe@outlook.com") != "janedoe@outlook.com")
        // A company's subdomains share its claim (issue 26, finding 13); a country's second
        // level and a hosting platform are suffixes, not one company.
        #expect(try claim("eve@eu.acme.example") == "acme.example")
        #expect(try claim("eve@mail.eu.acme.com") == "acme.com")
        #expect(try claim("eve@acme.co.uk") == "acme.co.uk")
        #expect(try claim("eve@sales.acme.co.uk") == "acme.co.uk")
        #expect(try claim("eve@acme.com.au") == "acme.com.au")
        #expect(try claim("eve@team.acme.github.io") == "acme.github.io")
    }

    @Test("registrable domains follow the Public Suffix List's rules: suffixes, wildcards, exceptions, the default rule")
    func publicSuffixRules() {
        let list = PublicSuffixes(rules: ["co.uk", "*.ck", "!www.ck", "github.io"])
        let cases: [(String, String)] = [
            ("example.com", "example.com"), ("a.b.example.com", "example.com"), ("EXAMPLE.com.", "example.com"),
            ("acme.co.uk", "acme.co.uk"), ("x.y.acme.co.uk", "acme.co.uk"), ("co.uk", "co.uk"), ("uk", "uk"),
            ("a.b.ck", "a.b.ck"), ("c.a.b.ck", "a.b.ck"), ("www.ck", "www.ck"), ("a.www.ck", "www.ck"),
            ("me.github.io", "me.github.io"), ("docs.me.github.io", "me.github.io"), ("github.io", "github.io"),
        ]
        for (domain, registrable) in cases {
            #expect(list.registrableDomain(domain) == registrable, "\(domain)")
        }
        #expect(PublicSuffixes.common.registrableDomain("city.kawasaki.jp") == "city.kawasaki.jp")
        #expect(PublicSuffixes.common.registrableDomain("shop.acme.kawasaki.jp") == "shop.acme.kawasaki.jp")
    }

    @Test("email addresses: what sign-up accepts")
    func emailAddresses() {
        for good in ["a@b.co", "first.last+tag@sub.example.org", "X@EXAMPLE.COM"] { #expect(EmailAddress(good) != nil, "\(good)") }
        for bad in [
            "", "a", "@b.co", "a@", "a@b", "a@@b.co", "a@b..co", ".a@b.co", "a@-b.co", "a b@c.co", "a@b.c0", "a@b.co\u{0}",
            String(repeating: "a", count: 65) + "@b.co",
        ] {
            #expect(EmailAddress(bad) == nil, "\(bad.debugDescription)")
        }
    }

    @Test("slugs are readable and unique per tenant")
    func slugs() {
        let tenant = TenantID("0123456789abcdef0123456789abcdef")!
        #expect(Tenants.slug("Acme Corp, S.A.", tenant) == "acme-corp-s-a-01234567")
        #expect(Tenants.slug("  ", tenant) == "tenant-01234567")
        #expect(Tenants.slug("Société Générale", tenant) == "soci-t-g-n-rale-01234567")
    }
}

@Suite("tenants' configuration is read from the environment and checked at start")
struct TenantsSettingsTests {
    /// `environment` with the one required variable, unless it says otherwise.
    func read(_ environment: [String: String]) -> (TenantsSettings, [String]) {
        let required = ["RAMPART_MAIL_TOKEN_PUBLIC_KEY": TenantsCluster.mailTokenKeys.currentPublicKey.text]
        var reader = EnvironmentReader(environment: required.merging(environment) { $1 })
        let settings = TenantsSettings(reader: &reader)
        return (settings, reader.problems)
    }

    @Test("defaults, overrides, a disposable-domains file, and every bad value named")
    func settings() throws {
        let (defaults, none) = read([:])
        #expect(none.isEmpty)
        #expect(defaults.sagaServices == [.auth, .tenants, .permissions, .audit, .webhooks])
        #expect(defaults.dataRegions == ["eu-central"])
        #expect(defaults.inactiveStarterDays == 3)

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("disposable-\(UUID().uuidString).txt")
        try "# ours\nthrowaway.example\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let (custom, problems) = read([
            "RAMPART_TENANTS_SAGA_SERVICES": "tenants,audit",
            "RAMPART_TENANTS_DATA_REGIONS": "us-east,eu-central",
            "RAMPART_TENANTS_DISPOSABLE_DOMAINS_FILE": file.path,
            "RAMPART_TENANTS_INACTIVE_STARTER_DAYS": "7",
        ])
        #expect(problems.isEmpty)
        #expect(custom.sagaServices == [.tenants, .audit])
        #expect(custom.dataRegions.first == "us-east")
        #expect(custom.emailDomains.isDisposable("x.throwaway.example"))
        #expect(custom.emailDomains.isDisposable("mailinator.com"))
        #expect(custom.inactiveStarterDays == 7)

        let (_, bad) = read([
            "RAMPART_TENANTS_SAGA_SERVICES": "tenants,billing",
            "RAMPART_TENANTS_DATA_REGIONS": "EU Central",
            "RAMPART_TENANTS_DISPOSABLE_DOMAINS_FILE": "/nonexistent/list.txt",
            "RAMPART_TENANTS_INACTIVE_STARTER_DAYS": "0",
            "RAMPART_MAIL_TOKEN_PUBLIC_KEY": "mail-1:not-a-key",
        ])
        #expect(bad.count == 5, "\(bad)")
        #expect(defaults.mailTokenKey == TenantsCluster.mailTokenKeys.currentPublicKey)
        let (_, missing) = read(["RAMPART_MAIL_TOKEN_PUBLIC_KEY": ""])
        #expect(missing == ["RAMPART_MAIL_TOKEN_PUBLIC_KEY is required"])
    }
}
