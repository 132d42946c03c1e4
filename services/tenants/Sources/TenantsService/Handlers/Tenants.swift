import Logging
import NATSKit
import PostgresNIO
import RampartModels
import RateLimitKit
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
import SwiftProtobuf
#else
import Foundation
#endif

/// The tenants service's operations: sign-up, the tenant and its policies, deletion. Members
/// and invitations are in `Members.swift`.
struct Tenants: Sendable {
    let settings: TenantsSettings
    let registry: TenantRegistry
    let members: MemberStore
    let invitations: InvitationStore
    let policies: PolicyStore
    let jetStream: JetStream
    let audit: AuditPublisher
    let rateLimit: RateLimitClient
    /// For permissions, told of every member change before the reply (PERM-6).
    let rpc: RPCClient
    let logger: Logger

    var database: Database { registry.database }

    // MARK: Sign-up

    /// TEN-3..6, first step: the checks that need no state (every problem reported at once),
    /// then the per-IP limits, which it charges. auth asks before it looks at the address or
    /// hashes the password, so that a sign-up that would be refused costs nothing and tells
    /// nothing (whether an address has an account) to a client over its limits.
    func admitRegistration(_ request: Rampart_V1_AdmitRegistrationRequest, call: CallContext) async throws -> Rampart_V1_AdmitRegistrationReply {
        guard call.principal == Principal(service: .auth) else { throw RampartError(.permissionDenied, "only auth admits a registration") }
        _ = try validated(request.organization, ownerEmail: request.ownerEmail, plan: request.plan, dataRegion: request.dataRegion)
        guard let ip = call.clientIP else {
            throw RampartError(.invalidArgument, "the client's IP address is required to register", details: ["field": "client_ip"])
        }
        for policy in ["register", "register_daily"] {
            switch await rateLimit.check(policy: policy, key: ip, context: call) {
            case .allowed, .allowedUnchecked: continue
            case .refused(let decision):
                throw decision.refusal("too many registrations from this address")
            case .unavailable(let error):
                logger.warning("registration refused: rate limiter unavailable", metadata: ["error": "\(loggable(error))"])
                throw RampartError(.unavailable, "registration is unavailable right now: try again shortly")
            }
        }
        return Rampart_V1_AdmitRegistrationReply()
    }

    /// A sign-up's organization, owner address, plan and region as they will be stored, or
    /// every rule they break.
    struct Validated {
        var name: String
        var registration: RegistrationNumbers.Accepted
        var email: EmailAddress
        var plan: Plan
        var region: String
    }

    func validated(
        _ organization: Rampart_V1_Organization,
        ownerEmail: String,
        plan: String,
        dataRegion: String,
        problems: [(field: String, message: String)] = []
    ) throws -> Validated {
        var problems = problems
        let name = displayName(organization.name, maximum: 200) ?? ""
        if name.isEmpty {
            problems.append(("organization.name", "the organization name must be 1 to 200 characters, without control characters"))
        }
        var registration: RegistrationNumbers.Accepted?
        do {
            registration = try RegistrationNumbers.validate(
                String(organization.registrationNumber.prefix(64)),
                country: String(organization.country.prefix(8))
            )
        } catch {
            let field = if case .unsupportedCountry = error { "organization.country" } else { "organization.registration_number" }
            problems.append((field, error.description))
        }
        let email = EmailAddress(ownerEmail)
        if let email {
            if settings.emailDomains.isDisposable(email.domain) {
                problems.append(("owner_email", "disposable email addresses are not accepted: use your work address"))
            }
        } else {
            problems.append(("owner_email", "the owner's email must be a valid address"))
        }
        let plan = plan.isEmpty ? Plan.starter : Plan(rawValue: plan)
        if plan == nil { problems.append(("plan", "the plan must be starter, pro or enterprise")) }
        let region = dataRegion.isEmpty ? settings.dataRegions[0] : dataRegion
        if !settings.dataRegions.contains(region) {
            problems.append(("data_region", "the data region must be one of \(settings.dataRegions.joined(separator: ", "))"))
        }
        if !problems.isEmpty { throw RampartError.invalidFields(problems) }
        guard let registration, let email, let plan else { throw RampartError.internalError() }
        return Validated(name: name, registration: registration, email: email, plan: plan, region: region)
    }

    /// TEN-3..5, once `admitRegistration` admitted the sign-up and auth wrote the owner: the
    /// same checks (the request is auth's, not the one admitted), then the one that reads other
    /// tenants (the Starter claim), and the tenant with its owner.
    func register(_ request: Rampart_V1_RegisterTenantRequest, call: CallContext) async throws -> Rampart_V1_RegisterTenantReply {
        guard call.principal == Principal(service: .auth) else { throw RampartError(.permissionDenied, "only auth registers a tenant") }
        let ownerID = UUID(uuidString: request.ownerUserID)
        let checked = try validated(
            request.organization,
            ownerEmail: request.ownerEmail,
            plan: request.plan,
            dataRegion: request.dataRegion,
            problems: ownerID == nil ? [("owner_user_id", "the owner's user ID must be a UUID")] : []
        )
        guard let ownerID else { throw RampartError.internalError() }
        let (name, registration, email, plan, region) = (checked.name, checked.registration, checked.email, checked.plan, checked.region)

        let tenantID = TenantID.random()
        let (tenant, lapsed) = try await registry.insert(
            TenantRegistry.NewTenant(
                id: tenantID,
                name: name,
                slug: Self.slug(name, tenantID),
                plan: plan,
                country: registration.country,
                registrationNumber: registration.number,
                emailDomain: email.domain,
                starterClaim: plan == .starter ? settings.emailDomains.starterClaim(email) : nil,
                dataRegion: region,
                ownerUserID: ownerID,
                ownerEmail: email.description
            ),
            claimGraceSeconds: settings.starterClaimGraceSeconds
        )
        if let lapsed { await claimLapsed(lapsed, to: tenantID, call: call) }
        // The tenant exists from here: if this publish fails, the saga sweep publishes again.
        await publishCreated(tenantID, plan: plan.rawValue, owner: (ownerID, email.description))
        var event = auditEvent(
            .tenantCreated,
            tenant: tenantID,
            call: call,
            actor: Rampart_V1_AuditActor(principal: Principal(user: ownerID))
        )
        event.actor.email = email.description
        event.details = ["plan": plan.rawValue, "country": registration.country, "data_region": region]
        await record(event)
        var reply = Rampart_V1_RegisterTenantReply()
        reply.tenant = tenant
        reply.tenant.waitingFor = settings.sagaServices.map(\.rawValue)
        reply.tenant.policies.auditRetentionDays = plan.auditRetentionDays
        return reply
    }

    /// AUTH-11: `lapsed` held its domain's Starter claim while its owner's address stayed
    /// unverified past the grace period; `taker` holds it now.
    func claimLapsed(_ lapsed: TenantID, to taker: TenantID, call: CallContext) async {
        var event = auditEvent(.starterClaimLapsed, tenant: lapsed, call: call, actor: Rampart_V1_AuditActor(principal: Principal(service: .tenants)))
        event.reason = "the owner's email address was not verified within \(settings.starterClaimGraceSeconds / 3600) hours"
        event.details = ["taken_by_tenant": taker.hex]
        await record(event)
    }

    /// auth, when a link proves a user's mailbox (AUTH-11): the Starter claims of the tenants
    /// they registered are held for good.
    func confirmOwnerEmail(_ request: Rampart_V1_ConfirmOwnerEmailRequest, call: CallContext) async throws -> Rampart_V1_ConfirmOwnerEmailReply {
        guard call.principal == Principal(service: .auth) else { throw RampartError(.permissionDenied, "only auth confirms an address") }
        guard let user = UUID(uuidString: request.userID) else { throw RampartError.invalidArgument("user_id must be a UUID", field: "user_id") }
        var reply = Rampart_V1_ConfirmOwnerEmailReply()
        reply.claimsConfirmed = Int32(try await registry.confirmOwnerEmail(user))
        return reply
    }

    /// A readable, unique slug: the name's letters and digits, and the start of the ID.
    static func slug(_ name: String, _ tenant: TenantID) -> String {
        var slug = ""
        for scalar in name.lowercased().unicodeScalars {
            if scalar.isASCII, scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) {
                slug.unicodeScalars.append(scalar)
            } else if !slug.isEmpty, !slug.hasSuffix("-") {
                slug += "-"
            }
            if slug.count >= 40 { break }
        }
        while slug.hasSuffix("-") { slug.removeLast() }
        return (slug.isEmpty ? "tenant" : slug) + "-" + tenant.hex.prefix(8)
    }

    // MARK: The tenant

    func get(_ call: CallContext) async throws -> Rampart_V1_Tenant {
        let tenant = try call.requireTenant()
        // The registry row is read once: the answer's, and the status the caller is judged by.
        let found = try await load(tenant)
        _ = try await authorize(call, tenant, .member, allowInactive: true, status: found.status)
        return found
    }

    /// The registry row with the policies from the tenant's schema (once provisioned).
    func load(_ tenant: TenantID) async throws -> Rampart_V1_Tenant {
        guard var found = try await registry.find(tenant), found.status != .deleted else {
            throw RampartError.noSuchTenant
        }
        found.policies.auditRetentionDays = Plan(rawValue: found.plan)?.auditRetentionDays ?? 0
        // While deleting, the schema may go at any moment: the registry row is the answer.
        guard found.status != .deleting, try await database.isProvisioned(tenant) else { return found }
        do {
            if var read = try await policies.read(tenant) {
                read.auditRetentionDays = found.policies.auditRetentionDays
                found.policies = read
            }
        } catch RampartError.noSuchTenant {
            // A deletion dropped the schema since the status was read.
        }
        return found
    }

    func update(_ request: Rampart_V1_UpdateTenantRequest, call: CallContext) async throws -> Rampart_V1_Tenant {
        let tenant = try call.requireTenant()
        let caller = try await authorize(call, tenant, .admin)
        var changes: [String: String] = [:]
        var name: String?
        if request.hasName {
            guard let newName = displayName(request.name, maximum: 200) else {
                throw RampartError.invalidArgument("the name must be 1 to 200 characters, without control characters", field: "name")
            }
            name = newName
            changes["name"] = newName
        }
        var plan: Plan?
        if request.hasPlan {
            guard let requested = Plan(rawValue: request.plan) else {
                throw RampartError.invalidArgument("the plan must be starter, pro or enterprise", field: "plan")
            }
            guard caller.role == .owner || caller.isService else { throw RampartError(.permissionDenied, "only an owner changes the plan") }
            plan = requested
        }
        if request.hasMfaRequirement, request.mfaRequirement.name == nil {
            throw RampartError.invalidArgument("mfa_requirement must be none, admins or everyone", field: "mfa_requirement")
        }
        if request.hasPasswordRotationDays, request.passwordRotationDays > 3650 {
            throw RampartError.invalidArgument("password rotation must be 0 (off) to 3650 days", field: "password_rotation_days")
        }
        // SSO-2: enforcing SSO without an active connection would lock everyone out but the
        // break-glass owners; auth, which owns the connections, says whether one is active.
        if request.hasSsoEnforced, request.ssoEnforced {
            let status = try await rpc.call(Subjects.Auth.ssoStatus, Rampart_V1_SsoStatusRequest(), context: asTenants(call, tenant))
            guard status.activeConnections > 0 else {
                throw RampartError.invalidArgument(
                    "sso_enforced needs an active SSO connection, and this tenant has none: activate one first",
                    field: "sso_enforced"
                )
            }
        }
        let breakGlass = request.setBreakGlassOwners ? try await checkedBreakGlassOwners(request.breakGlassOwners, in: tenant) : nil
        if !request.setBreakGlassOwners, !request.breakGlassOwners.isEmpty {
            throw RampartError.invalidArgument("set set_break_glass_owners to replace break_glass_owners", field: "set_break_glass_owners")
        }
        let before = try await load(tenant)
        var claim: String?
        if plan == .starter, let owner = try await registry.owner(tenant), let email = EmailAddress(owner.email) {
            claim = settings.emailDomains.starterClaim(email)
        }
        let lapsed = try await registry.update(
            tenant,
            name: name,
            plan: plan,
            starterClaim: claim,
            claimGraceSeconds: settings.starterClaimGraceSeconds
        )
        if let lapsed { await claimLapsed(lapsed, to: tenant, call: call) }
        if request.hasMfaRequirement || request.hasSsoEnforced || request.hasPasswordRotationDays || breakGlass != nil {
            try await policies.update(
                tenant,
                mfaRequirement: request.hasMfaRequirement ? request.mfaRequirement.name : nil,
                ssoEnforced: request.hasSsoEnforced ? request.ssoEnforced : nil,
                passwordRotationDays: request.hasPasswordRotationDays ? Int32(request.passwordRotationDays) : nil,
                breakGlassOwners: breakGlass
            )
            if let breakGlass { changes["break_glass_owners"] = breakGlass.map { $0.uuidString.lowercased() }.joined(separator: ",") }
            if request.hasMfaRequirement, let requirement = request.mfaRequirement.name { changes["mfa_requirement"] = requirement }
            if request.hasSsoEnforced { changes["sso_enforced"] = String(request.ssoEnforced) }
            if request.hasPasswordRotationDays { changes["password_rotation_days"] = String(request.passwordRotationDays) }
        }
        if let plan, plan.rawValue != before.plan {
            var changed = Rampart_V1_TenantPlanChanged()
            changed.eventID = UUID().uuidString.lowercased()
            changed.tenantID = tenant.hex
            changed.occurredAtMs = WallClock.milliseconds()
            changed.plan = plan.rawValue
            _ = try await jetStream.publish(try changed.serializedBytes(), to: Subjects.TenantEvents.planChanged, messageID: changed.eventID)
            var event = auditEvent(.planChanged, tenant: tenant, call: call)
            event.details = ["before": before.plan, "after": plan.rawValue]
            await record(event)
        }
        if !changes.isEmpty {
            var event = auditEvent(.tenantPolicyChanged, tenant: tenant, call: call)
            event.details = changes
            await record(event)
        }
        return try await load(tenant)
    }

    /// At most 2 break-glass owners (SSO-2), each an active owner of the tenant.
    func checkedBreakGlassOwners(_ ids: [String], in tenant: TenantID) async throws -> [UUID] {
        var owners: [UUID] = []
        for text in ids {
            guard text.utf8.count == 36, let id = UUID(uuidString: text) else {
                throw RampartError.invalidArgument("break_glass_owners takes user IDs", field: "break_glass_owners")
            }
            guard let member = try await members.find(id, in: tenant), member.role == .owner, member.status == .active else {
                throw RampartError.invalidArgument("\(text) is not an active owner of this tenant", field: "break_glass_owners")
            }
            if !owners.contains(id) { owners.append(id) }
        }
        guard owners.count <= 2 else { throw RampartError.invalidArgument("at most 2 break-glass owners", field: "break_glass_owners") }
        return owners
    }

    // MARK: IP allowlist (TEN-11)

    static let maximumAllowlistEntries = 100

    func getAllowlist(_ call: CallContext) async throws -> Rampart_V1_IpAllowlist {
        let tenant = try call.requireTenant()
        _ = try await authorize(call, tenant, .member)
        var reply = Rampart_V1_IpAllowlist()
        reply.cidrs = try await policies.allowlist(tenant)
        return reply
    }

    /// Replaces the list. Each entry is parsed and stored in canonical form; the caller's own
    /// address must stay inside it, so an administrator cannot lock everyone out by mistake.
    func setAllowlist(_ request: Rampart_V1_IpAllowlist, call: CallContext) async throws -> Rampart_V1_IpAllowlist {
        let tenant = try call.requireTenant()
        _ = try await authorize(call, tenant, .admin)
        guard request.cidrs.count <= Self.maximumAllowlistEntries else {
            throw RampartError.invalidArgument("at most \(Self.maximumAllowlistEntries) CIDRs", field: "cidrs")
        }
        var networks: [IPNetwork] = []
        for (index, text) in request.cidrs.enumerated() {
            guard text.utf8.count <= 64, let network = IPNetwork(cidr: text) else {
                throw RampartError.invalidArgument("cidrs[\(index)] is not an IPv4 or IPv6 CIDR (e.g. 203.0.113.0/24, 2001:db8::/48)", field: "cidrs")
            }
            if !networks.contains(network) { networks.append(network) }
        }
        if !networks.isEmpty, let ip = call.clientIP, let caller = IPNetwork(address: ip), !networks.contains(where: { $0.contains(caller) }) {
            throw RampartError(
                .failedPrecondition,
                "your own address \(ip) is not in the list: add it, or you would lock yourself out",
                details: ["field": "cidrs"]
            )
        }
        try await policies.replaceAllowlist(tenant, with: networks)
        var event = auditEvent(.tenantPolicyChanged, tenant: tenant, call: call)
        event.details = ["ip_allowlist": networks.map(\.description).joined(separator: ",")]
        await record(event)
        return try await getAllowlist(call)
    }

    // MARK: Deletion (the reverse saga)

    func delete(_ call: CallContext) async throws -> Rampart_V1_Tenant {
        let tenant = try call.requireTenant()
        _ = try await authorize(call, tenant, .owner, allowInactive: true)
        try await startDeletion(tenant, reason: "owner_request", call: call)
        return try await load(tenant)
    }

    /// Marks the tenant `deleting` and publishes tenant.deleted. The request is audited in the
    /// tenant's log and in the platform log, which outlives the tenant's.
    func startDeletion(_ tenant: TenantID, reason: String, call: CallContext?) async throws {
        guard try await registry.markDeleting(tenant, reason: reason) else { return }
        await publishDeleted(tenant, reason: reason)
        for chain in [tenant, nil] {
            var event = auditEvent(.tenantDeletionRequested, tenant: tenant, call: call)
            if chain == nil { event.tenantID = "" }
            event.reason = reason
            await record(event)
        }
    }

    // MARK: Saga publishing

    func publishCreated(_ tenant: TenantID, plan: String, owner: (userID: UUID, email: String)?) async {
        var event = Rampart_V1_TenantCreated()
        event.eventID = "tenant-created-\(tenant.hex)"
        event.tenantID = tenant.hex
        event.occurredAtMs = WallClock.milliseconds()
        event.plan = plan
        event.ownerUserID = owner?.userID.uuidString.lowercased() ?? ""
        event.ownerEmail = owner?.email ?? ""
        await publishSagaStep(tenant, subject: Subjects.TenantEvents.created, payload: try? event.serializedBytes(), messageID: event.eventID)
    }

    func publishDeleted(_ tenant: TenantID, reason: String) async {
        var event = Rampart_V1_TenantDeleted()
        event.eventID = "tenant-deleted-\(tenant.hex)"
        event.tenantID = tenant.hex
        event.occurredAtMs = WallClock.milliseconds()
        event.reason = reason
        await publishSagaStep(tenant, subject: Subjects.TenantEvents.deleted, payload: try? event.serializedBytes(), messageID: event.eventID)
    }

    /// Publishes and records when; a failure is left to the saga sweep, which publishes again.
    private func publishSagaStep(_ tenant: TenantID, subject: String, payload: [UInt8]?, messageID: String) async {
        do {
            _ = try await jetStream.publish(payload ?? [], to: subject, messageID: messageID)
            try await registry.markPublished(tenant)
        } catch {
            logger.warning(
                "saga step not published yet, the sweep will retry",
                metadata: ["tenant": "\(tenant.hex)", "subject": "\(subject)", "error": "\(loggable(error))"]
            )
        }
    }

    // MARK: Audit

    func auditEvent(_ action: AuditAction, tenant: TenantID, call: CallContext?, actor: Rampart_V1_AuditActor? = nil) -> Rampart_V1_AuditEvent {
        Rampart_V1_AuditEvent(action, tenant: tenant, target: ("tenant", tenant.hex), call: call, actor: actor, service: .tenants)
    }

    /// The change is made: an audit log that stays unreachable after the publisher's retries
    /// is logged as an error rather than undoing it.
    func record(_ event: Rampart_V1_AuditEvent) async {
        await audit.record(event)
    }
}
