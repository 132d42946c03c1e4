import NATSKit
import RampartModels
import RateLimitKit
import ServiceKit

/// Tenants, their members, plans and policies, and the provisioning saga (SPEC section 5).
///
/// The registry lives in `public`; members, invitations, policies and the IP allowlist in each
/// tenant's own schema. A tenant comes from the call context (validated before any handler
/// runs), never from a request body, except where the body is the credential: an invitation
/// token names its tenant.
public enum TenantsService {
    public static func descriptor(settings: TenantsSettings = TenantsSettings()) -> ServiceDescriptor {
        @Sendable func tenants(_ context: ServiceContext) throws -> Tenants {
            guard let database = context.database else { throw RampartError(.internal, "tenants has no database") }
            let jetStream = try context.nats.jetStream()
            return Tenants(
                settings: settings,
                registry: TenantRegistry(database: database, sagaServices: settings.sagaServices, logger: context.logger),
                jetStream: jetStream,
                audit: AuditPublisher(jetStream: jetStream, service: .tenants, logger: context.logger),
                rateLimit: RateLimitClient(connection: context.nats),
                rpc: RPCClient(connection: context.nats),
                logger: context.logger
            )
        }
        return ServiceDescriptor(
            name: .tenants,
            migrations: TenantsMigrations.set,
            prepare: { context in
                let jetStream = try context.nats.jetStream()
                // tenants owns the domain-events stream (its saga's events start it); audit owns
                // the audit stream.
                try await jetStream.ensureStream(DomainEvents.stream)
                try await AuditPublisher(jetStream: jetStream, service: .tenants, logger: context.logger).requireStream()
            },
            routes: { router, context in
                let made = Result { try tenants(context) }
                router.register(Subjects.Tenants.admitRegistration, requires: .principal) { (request: Rampart_V1_AdmitRegistrationRequest, call) in
                    try await made.get().admitRegistration(request, call: call)
                }
                router.register(Subjects.Tenants.register, requires: .principal) { (request: Rampart_V1_RegisterTenantRequest, call) in
                    try await made.get().register(request, call: call)
                }
                router.register(Subjects.Tenants.get, requires: .tenant) { (_: Rampart_V1_GetTenantRequest, call) in
                    try await made.get().get(call)
                }
                router.register(Subjects.Tenants.update, requires: .tenant) { (request: Rampart_V1_UpdateTenantRequest, call) in
                    try await made.get().update(request, call: call)
                }
                router.register(Subjects.Tenants.delete, requires: .tenant) { (_: Rampart_V1_DeleteTenantRequest, call) in
                    try await made.get().delete(call)
                }
                router.register(Subjects.Tenants.getIPAllowlist, requires: .tenant) { (_: Rampart_V1_GetIpAllowlistRequest, call) in
                    try await made.get().getAllowlist(call)
                }
                router.register(Subjects.Tenants.setIPAllowlist, requires: .tenant) { (request: Rampart_V1_IpAllowlist, call) in
                    try await made.get().setAllowlist(request, call: call)
                }
                router.register(Subjects.Tenants.inviteMember, requires: .tenant) { (request: Rampart_V1_InviteMemberRequest, call) in
                    try await made.get().invite(request, call: call)
                }
                router.register(Subjects.Tenants.getInvitation, requires: .principal) { (request: Rampart_V1_GetInvitationRequest, call) in
                    try await made.get().getInvitation(request, call: call)
                }
                router.register(Subjects.Tenants.acceptInvitation, requires: .principal) { (request: Rampart_V1_AcceptInvitationRequest, call) in
                    try await made.get().accept(request, call: call)
                }
                router.register(Subjects.Tenants.confirmOwnerEmail, requires: .principal) {
                    (request: Rampart_V1_ConfirmOwnerEmailRequest, call) in
                    try await made.get().confirmOwnerEmail(request, call: call)
                }
                router.register(Subjects.Tenants.cancelInvitation, requires: [.tenant, .principal]) {
                    (request: Rampart_V1_CancelInvitationRequest, call) in
                    try await made.get().cancelInvitation(request, call: call)
                }
                router.register(Subjects.Tenants.resendInvitation, requires: [.tenant, .principal]) {
                    (request: Rampart_V1_ResendInvitationRequest, call) in
                    try await made.get().resendInvitation(request, call: call)
                }
                router.register(Subjects.Tenants.listMemberships, requires: .principal) { (_: Rampart_V1_ListMembershipsRequest, call) in
                    try await made.get().listMemberships(call)
                }
                router.register(Subjects.Tenants.listMembers, requires: .tenant) { (_: Rampart_V1_ListMembersRequest, call) in
                    try await made.get().listMembers(call)
                }
                router.register(Subjects.Tenants.getMember, requires: [.tenant, .principal]) { (request: Rampart_V1_GetMemberRequest, call) in
                    try await made.get().getMember(request, call: call)
                }
                router.register(Subjects.Tenants.updateMember, requires: .tenant) { (request: Rampart_V1_UpdateMemberRequest, call) in
                    try await made.get().updateMember(request, call: call)
                }
                router.register(Subjects.Tenants.removeMember, requires: .tenant) { (request: Rampart_V1_RemoveMemberRequest, call) in
                    try await made.get().removeMember(request, call: call)
                }
                router.register(Subjects.Tenants.isolateMember, requires: [.tenant, .principal]) { (request: Rampart_V1_IsolateMemberRequest, call) in
                    try await made.get().isolateMember(request, call: call)
                }
                router.register(Subjects.Tenants.liftMemberIsolation, requires: [.tenant, .principal]) {
                    (request: Rampart_V1_LiftMemberIsolationRequest, call) in
                    try await made.get().liftMemberIsolation(request, call: call)
                }
                router.register(Subjects.Tenants.isolateTenant, requires: [.tenant, .principal]) { (request: Rampart_V1_IsolateTenantRequest, call) in
                    try await made.get().isolateTenant(request, call: call)
                }
                router.register(Subjects.Tenants.liftTenantIsolation, requires: [.tenant, .principal]) {
                    (request: Rampart_V1_LiftTenantIsolationRequest, call) in
                    try await made.get().liftTenantIsolation(request, call: call)
                }
            },
            services: { context in
                guard context.database != nil else { return [] }
                let tenants = try tenants(context)
                return [
                    TenantSagaReceipts(tenants: tenants, health: context.health, logger: context.logger),
                    TenantSweeper(tenants: tenants, health: context.health, logger: context.logger),
                    TenantActivity(tenants: tenants, health: context.health, logger: context.logger),
                ]
            },
            tenantLifecycle: { context in
                TenantLifecycleHooks(created: { event in
                    guard let tenant = TenantID(event.tenantID) else { return }
                    try await tenants(context).addOwner(tenant)
                })
            }
        )
    }
}
