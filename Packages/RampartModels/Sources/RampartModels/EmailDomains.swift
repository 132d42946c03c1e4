/// What sign-up needs to know about an email address's domain: whether it is a disposable
/// mailbox (TEN-4, refused) and whether it is a free mail provider, where the one-Starter-per-
/// domain rule (TEN-5) counts the address rather than the domain: otherwise the first person
/// with a gmail.com address would take gmail.com's only Starter plan.
public struct EmailDomains: Sendable {
    /// Built in: Mailinator and the domains it also answers for, the temp-mail and Guerrilla
    /// Mail families, and other common throwaway services.
    public static let builtInDisposable: Set<String> = [
        // Mailinator and its alternate domains
        "mailinator.com", "mailinator.net", "mailinator.org", "mailinator2.com", "mailinater.com", "notmailinator.com",
        "binkmail.com", "bobmail.info", "chammy.info", "devnullmail.com", "letthemeatspam.com", "mailismagic.com", "mailtothis.com",
        "monumentmail.com", "putthisinyourspamdatabase.com", "reallymymail.com", "safetymail.info", "sendspamhere.com",
        "sogetthis.com", "spamherelots.com", "spamhereplease.com", "suremail.info", "thisisnotmyrealemail.com", "tradermail.info",
        "veryrealemail.com", "zippymail.info", "streetwisemail.com", "spambooger.com",
        // temp-mail
        "tempmail.com", "tempmail.net", "tempmail.org", "temp-mail.org", "temp-mail.io", "tempmail.dev", "tempmailo.com",
        "tempmail.plus", "tempmailaddress.com", "tempr.email", "tempinbox.com", "mytemp.email", "temporary-mail.net",
        // Guerrilla Mail
        "guerrillamail.com", "guerrillamail.net", "guerrillamail.org", "guerrillamail.biz", "guerrillamail.de", "guerrillamail.info",
        "guerrillamailblock.com", "sharklasers.com", "grr.la", "pokemail.net", "spam4.me",
        // others
        "10minutemail.com", "10minutemail.net", "20minutemail.com", "yopmail.com", "yopmail.fr", "yopmail.net", "trashmail.com",
        "trashmail.de", "trashmail.net", "throwawaymail.com", "maildrop.cc", "dispostable.com", "getnada.com", "nada.email",
        "mailnesia.com", "mintemail.com", "mohmal.com", "fakeinbox.com", "emailondeck.com", "mailcatch.com", "discard.email",
        "burnermail.io", "getairmail.com", "spamgourmet.com", "mailpoof.com", "moakt.com", "emailfake.com", "fakemail.net",
        "33mail.com", "inboxkitten.com", "mail.tm", "mailsac.com", "dropmail.me", "harakirimail.com", "spambox.us",
    ]

    /// Free mail providers: anyone can have an address there, so the address is the unit.
    public static let freeMail: Set<String> = [
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.fr", "hotmail.co.uk", "live.com", "live.fr", "msn.com",
        "yahoo.com", "yahoo.fr", "yahoo.co.uk", "yahoo.co.in", "ymail.com", "icloud.com", "me.com", "mac.com", "aol.com",
        "proton.me", "protonmail.com", "pm.me", "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com", "mail.ru", "yandex.com",
        "yandex.ru", "zoho.com", "orange.fr", "free.fr", "laposte.net", "sfr.fr", "wanadoo.fr", "rediffmail.com", "qq.com",
        "163.com", "126.com", "tutanota.com", "tuta.io", "fastmail.com", "hey.com",
    ]

    /// Providers that ignore dots in the local part.
    static let dotInsensitive: Set<String> = ["gmail.com", "googlemail.com"]

    public let disposable: Set<String>
    public let publicSuffixes: PublicSuffixes

    /// `extraDisposable`: the configured list file's domains, added to the built-in ones.
    public init(extraDisposable: Set<String> = [], publicSuffixes: PublicSuffixes = .common) {
        disposable = Self.builtInDisposable.union(extraDisposable.map { $0.lowercased() })
        self.publicSuffixes = publicSuffixes
    }

    /// Reads a list file: one domain per line, `#` comments and blank lines ignored.
    public static func parseList(_ text: String) -> Set<String> {
        Set(
            text.split(whereSeparator: \.isNewline).compactMap { line in
                let domain = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
                    .filter { !$0.isWhitespace }.lowercased()
                return domain.isEmpty ? nil : domain
            }
        )
    }

    /// The domain or one of its parents is listed (`x.mailinator.com` is Mailinator).
    public func isDisposable(_ domain: String) -> Bool {
        Self.suffixes(of: domain).contains { disposable.contains($0) }
    }

    public func isFreeMail(_ domain: String) -> Bool {
        Self.suffixes(of: domain).contains { Self.freeMail.contains($0) }
    }

    /// What one Starter tenant is held against: the registrable domain for a company's own
    /// domain (`eu.acme.com` holds `acme.com`'s), the mailbox for a free mail address, so
    /// `Jane.Doe+x@gmail.com` and `janedoe@gmail.com` hold the same claim.
    public func starterClaim(_ email: EmailAddress) -> String {
        guard isFreeMail(email.domain) else { return publicSuffixes.registrableDomain(email.domain) }
        var local = String(email.localPart.split(separator: "+", maxSplits: 1, omittingEmptySubsequences: false)[0])
        if Self.dotInsensitive.contains(email.domain) { local.removeAll { $0 == "." } }
        let domain = email.domain == "googlemail.com" ? "gmail.com" : email.domain
        return "\(local)@\(domain)"
    }

    static func suffixes(of domain: String) -> [String] {
        let labels = domain.split(separator: ".")
        return (0..<max(0, labels.count - 1)).map { labels[$0...].joined(separator: ".") }
    }
}
