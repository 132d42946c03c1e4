/// Public suffixes, read as the Public Suffix List (publicsuffix.org) reads them, so that the
/// one-Starter-per-domain rule (TEN-5) holds against the registrable domain: `eu.acme.com` and
/// `us.acme.com` are one company's (`acme.com`), while `acme.co.uk` and `globex.co.uk` are two.
/// Without it, any subdomain a company's mail server answers for was a fresh free plan
/// (issue 26, finding 13).
///
/// The rules are the List's format: `co.uk` (a suffix), `*.ck` (every label under `ck`) and
/// `!www.ck` (an exception to a wildcard). Built in are the common ones (the second-level
/// suffixes of the most used country codes and the hosting platforms where anyone gets a
/// subdomain); a domain under none of them has a one-label suffix, the List's default rule `*`.
public struct PublicSuffixes: Sendable {
    private let suffixes: Set<String>
    private let wildcards: Set<String>
    private let exceptions: Set<String>

    public init(rules: some Sequence<String>) {
        var suffixes = Set<String>()
        var wildcards = Set<String>()
        var exceptions = Set<String>()
        for rule in rules {
            let rule = rule.lowercased()
            if rule.hasPrefix("!") {
                exceptions.insert(String(rule.dropFirst()))
            } else if rule.hasPrefix("*.") {
                wildcards.insert(String(rule.dropFirst(2)))
            } else if !rule.isEmpty {
                suffixes.insert(rule)
            }
        }
        self.suffixes = suffixes
        self.wildcards = wildcards
        self.exceptions = exceptions
    }

    /// The domain someone registered: the public suffix and one label more. A domain that is a
    /// public suffix itself (or shorter) is answered as it is.
    public func registrableDomain(_ domain: String) -> String {
        let lowered = domain.lowercased()
        let domain = lowered.hasSuffix(".") ? String(lowered.dropLast()) : lowered
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard labels.count > 1 else { return domain }
        let suffixLength = publicSuffixLength(labels)
        guard labels.count > suffixLength else { return domain }
        return labels.suffix(suffixLength + 1).joined(separator: ".")
    }

    /// Whether `domain` is a public suffix itself (`co.uk`, `github.io`): nobody owns it alone.
    public func isPublicSuffix(_ domain: String) -> Bool {
        let labels = domain.lowercased().split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        return labels.count <= publicSuffixLength(labels)
    }

    /// How many labels at the end of `labels` are the public suffix: an exception rule wins,
    /// else the longest matching rule, else one label.
    private func publicSuffixLength(_ labels: [String]) -> Int {
        var longest = 1
        for start in 0..<labels.count {
            let candidate = labels[start...].joined(separator: ".")
            let length = labels.count - start
            // `!www.ck` under `*.ck`: the exception is registrable, its parent the suffix.
            if exceptions.contains(candidate) { return length - 1 }
            if suffixes.contains(candidate) { longest = max(longest, length) }
            // `*.ck` matches any one label under `ck`.
            if length > 1, wildcards.contains(labels[(start + 1)...].joined(separator: ".")) { longest = max(longest, length) }
        }
        return longest
    }

    /// The common suffixes, from the List's ICANN and private sections.
    public static let common = PublicSuffixes(
        rules: [
            // United Kingdom, Ireland
            "co.uk", "org.uk", "me.uk", "ltd.uk", "plc.uk", "net.uk", "ac.uk", "gov.uk", "sch.uk", "nhs.uk", "police.uk", "gov.ie",
            // Australia, New Zealand
            "com.au", "net.au", "org.au", "edu.au", "gov.au", "asn.au", "id.au",
            "co.nz", "net.nz", "org.nz", "ac.nz", "govt.nz", "school.nz", "geek.nz", "gen.nz", "kiwi.nz", "maori.nz",
            // Asia
            "co.jp", "ne.jp", "or.jp", "ac.jp", "go.jp", "ed.jp", "gr.jp", "lg.jp", "ad.jp", "*.kawasaki.jp", "!city.kawasaki.jp",
            "co.in", "net.in", "org.in", "firm.in", "gen.in", "ind.in", "ac.in", "edu.in", "gov.in", "res.in", "nic.in",
            "com.cn", "net.cn", "org.cn", "gov.cn", "edu.cn", "ac.cn",
            "com.hk", "org.hk", "net.hk", "edu.hk", "gov.hk", "idv.hk",
            "com.tw", "org.tw", "net.tw", "edu.tw", "gov.tw", "idv.tw",
            "co.kr", "or.kr", "ne.kr", "go.kr", "ac.kr", "re.kr",
            "com.sg", "net.sg", "org.sg", "edu.sg", "gov.sg",
            "com.my", "net.my", "org.my", "edu.my", "gov.my",
            "co.id", "or.id", "ac.id", "go.id", "web.id",
            "co.th", "or.th", "ac.th", "go.th", "in.th",
            "com.ph", "net.ph", "org.ph", "gov.ph", "edu.ph",
            "com.vn", "net.vn", "org.vn", "gov.vn", "edu.vn",
            "com.pk", "net.pk", "org.pk", "gov.pk", "edu.pk",
            "*.bd", "*.np", "*.kh", "*.mm",
            "co.il", "org.il", "net.il", "ac.il", "gov.il",
            "com.tr", "net.tr", "org.tr", "gov.tr", "edu.tr", "gen.tr",
            "com.sa", "net.sa", "org.sa", "gov.sa", "edu.sa",
            "ae.org", "co.ae", "net.ae", "org.ae", "gov.ae",
            // The Americas
            "com.br", "net.br", "org.br", "gov.br", "edu.br", "art.br", "eng.br",
            "com.mx", "net.mx", "org.mx", "gob.mx", "edu.mx",
            "com.ar", "net.ar", "org.ar", "gob.ar", "edu.ar",
            "com.co", "net.co", "org.co", "gov.co", "edu.co",
            "com.pe", "net.pe", "org.pe", "gob.pe", "edu.pe",
            "co.cl", "gob.cl", "gov.cl",
            "com.ve", "net.ve", "org.ve", "gob.ve",
            "*.er", "*.fk",
            // Africa
            "co.za", "org.za", "net.za", "gov.za", "ac.za", "web.za", "edu.za",
            "com.ng", "net.ng", "org.ng", "gov.ng", "edu.ng",
            "co.ke", "or.ke", "ne.ke", "go.ke", "ac.ke",
            "com.eg", "net.eg", "org.eg", "gov.eg", "edu.eg",
            "co.ma", "net.ma", "org.ma", "gov.ma", "ac.ma",
            "art.sn", "com.sn", "edu.sn", "gouv.sn", "org.sn", "perso.sn", "univ.sn",
            "com.gh", "org.gh", "gov.gh", "edu.gh",
            "co.tz", "or.tz", "go.tz", "ac.tz",
            "co.ug", "or.ug", "go.ug", "ac.ug",
            "*.ck", "!www.ck",
            // Europe
            "gouv.fr", "asso.fr", "com.fr", "nom.fr", "prd.fr", "tm.fr",
            "com.es", "nom.es", "org.es", "gob.es", "edu.es",
            "com.pt", "org.pt", "gov.pt", "edu.pt",
            "gov.it", "edu.it",
            "com.pl", "net.pl", "org.pl", "gov.pl", "edu.pl", "biz.pl", "info.pl",
            "co.at", "or.at", "ac.at", "gv.at",
            "com.gr", "net.gr", "org.gr", "gov.gr", "edu.gr",
            "com.ua", "net.ua", "org.ua", "gov.ua", "edu.ua",
            "com.ru", "net.ru", "org.ru", "msk.ru", "spb.ru",
            "co.hu", "org.hu",
            "com.ro", "org.ro", "nom.ro",
            "com.cy", "com.mt",
            "ac.be",
            // Hosting platforms where anyone has a subdomain (the List's private section)
            "github.io", "gitlab.io", "herokuapp.com", "blogspot.com", "appspot.com", "firebaseapp.com", "web.app",
            "azurewebsites.net", "cloudapp.net", "cloudfront.net", "s3.amazonaws.com", "netlify.app", "vercel.app",
            "pages.dev", "workers.dev", "fly.dev", "onrender.com", "glitch.me", "ngrok.io", "ngrok-free.app",
            "myshopify.com", "wixsite.com", "wordpress.com", "squarespace.com", "substack.com", "notion.site",
        ]
    )
}
