public import RampartModels
public import ServiceKit
public import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// tenants' own configuration.
public struct TenantsSettings: Sendable {
    /// The services that must provision a tenant's schema before it is active (and drop it
    /// before it is deleted): every service that stores tenant data.
    public var sagaServices: [ServiceName]
    /// Where a tenant's data may live; the first is the default.
    public var dataRegions: [String]
    public var emailDomains: EmailDomains
    /// How long an invitation can be accepted.
    public var invitationSeconds: Int
    /// A Starter tenant with no member login for this long is deleted (TEN-7).
    public var inactiveStarterDays: Int
    /// How often the saga nudges tenants stuck in provisioning or deleting, and the inactive
    /// Starter sweep runs.
    public var sweepIntervalSeconds: Int
    /// A saga step unanswered this long is published again (each service ignores a repeat).
    public var sagaRetrySeconds: Int
    /// AUTH-11: how long a Starter claim (TEN-5) holds while its owner's address is unverified;
    /// after that, the next registration for the domain takes it.
    public var starterClaimGraceSeconds: Int
    /// The mail sender's public key: invitation tokens are sealed to it.
    public var mailTokenKey: SealedBox.PublicKey

    public init(
        sagaServices: [ServiceName] = [.auth, .tenants, .permissions, .audit, .webhooks],
        dataRegions: [String] = ["eu-central"],
        emailDomains: EmailDomains = EmailDomains(),
        invitationSeconds: Int = 7 * 86_400,
        inactiveStarterDays: Int = 3,
        sweepIntervalSeconds: Int = 300,
        sagaRetrySeconds: Int = 60,
        starterClaimGraceSeconds: Int = 3 * 86_400,
        mailTokenKey: SealedBox.PublicKey = MailTokens.throwawayKey()
    ) {
        self.sagaServices = sagaServices
        self.dataRegions = dataRegions
        self.emailDomains = emailDomains
        self.invitationSeconds = invitationSeconds
        self.inactiveStarterDays = inactiveStarterDays
        self.sweepIntervalSeconds = sweepIntervalSeconds
        self.sagaRetrySeconds = sagaRetrySeconds
        self.starterClaimGraceSeconds = starterClaimGraceSeconds
        self.mailTokenKey = mailTokenKey
    }

    /// `RAMPART_TENANTS_SAGA_SERVICES` (auth,tenants,permissions,audit,webhooks),
    /// `RAMPART_TENANTS_DATA_REGIONS` (eu-central; the first is the default),
    /// `RAMPART_TENANTS_DISPOSABLE_DOMAINS_FILE` (one domain per line, added to the built-in list),
    /// `RAMPART_TENANTS_INVITATION_SECONDS` (7 days), `RAMPART_TENANTS_INACTIVE_STARTER_DAYS` (3),
    /// `RAMPART_TENANTS_SWEEP_INTERVAL_SECONDS` (300), `RAMPART_TENANTS_SAGA_RETRY_SECONDS` (60),
    /// `RAMPART_TENANTS_STARTER_CLAIM_GRACE_SECONDS` (3 days), `RAMPART_MAIL_TOKEN_PUBLIC_KEY`
    /// (required).
    public init(reader: inout EnvironmentReader) {
        var services: [ServiceName] = []
        for name in reader.list("tenants.saga-services", default: ["auth", "tenants", "permissions", "audit", "webhooks"]) {
            guard let service = ServiceName(rawValue: name) else {
                reader.problem("RAMPART_TENANTS_SAGA_SERVICES: \(name) is not a Rampart service")
                continue
            }
            services.append(service)
        }
        let regions = reader.list("tenants.data-regions", default: ["eu-central"])
        for region in regions where !Self.isValidRegion(region) {
            reader.problem("RAMPART_TENANTS_DATA_REGIONS: \(region) must be 1 to 32 of a-z 0-9 -")
        }
        var extra: Set<String> = []
        if let path = reader.optionalString("tenants.disposable-domains-file") {
            if let data = FileManager.default.contents(atPath: path) {
                extra = EmailDomains.parseList(String(decoding: data, as: UTF8.self))
            } else {
                reader.problem("RAMPART_TENANTS_DISPOSABLE_DOMAINS_FILE: cannot read \(path)")
            }
        }
        self.init(
            sagaServices: services,
            dataRegions: regions.isEmpty ? ["eu-central"] : regions,
            emailDomains: EmailDomains(extraDisposable: extra),
            invitationSeconds: reader.int("tenants.invitation-seconds", default: 7 * 86_400, range: 60...(90 * 86_400)),
            inactiveStarterDays: reader.int("tenants.inactive-starter-days", default: 3, range: 1...3650),
            sweepIntervalSeconds: reader.int("tenants.sweep-interval-seconds", default: 300, range: 1...86_400),
            sagaRetrySeconds: reader.int("tenants.saga-retry-seconds", default: 60, range: 1...86_400),
            starterClaimGraceSeconds: reader.int("tenants.starter-claim-grace-seconds", default: 3 * 86_400, range: 1...(30 * 86_400)),
            mailTokenKey: reader.mailTokenPublicKey()
        )
    }

    static func isValidRegion(_ region: String) -> Bool {
        (1...32).contains(region.utf8.count) && region.utf8.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || $0 == 45 }
    }
}
