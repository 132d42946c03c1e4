import NATSKit
import RampartModels
import RateLimitKit
public import ServiceKit

/// Tenants, their members, plans and policies, and the provisioning saga (SPEC section 5).
///
/// The registry lives in `public`; members, invitations, policies and the IP allowlist in each
/// tenant's own schema. A tenant comes from the call context (validated before any handler
/// runs), never from a request body, except where the body is the credential: an invitation
/// token names its tenant.
public enum TenantsService {
    public static func descriptor(settings: TenantsSettings = TenantsSettings()) -> ServiceDescriptor {
        ServiceDescriptor(name: .tenants, migrations: TenantsMigrations.set) { context in try await build(context, settings: settings) }
    }

    static func build(_ context: ServiceContext, settings: TenantsSettings) async throws -> ServiceParts {
        let database = try context.database
        // tenants owns the domain-events stream (its saga's events start it); audit owns the
        // audit stream.
        try await context.jetStream.ensureStream(DomainEvents.stream)
        try await context.audit.requireStream()
        let tenants = Tenants(
            settings: settings,
            registry: TenantRegistry(database: database, sagaServices: settings.sagaServices, logger: context.logger),
            members: MemberStore(database: database, logger: context.logger),
            invitations: InvitationStore(database: database, logger: context.logger),
            policies: PolicyStore(database: database, logger: context.logger),
            jetStream: context.jetStream,
            audit: context.audit,
            rateLimit: RateLimitClient(connection: context.nats),
            rpc: RPCClient(connection: context.nats),
            logger: context.logger
        )

        var router = RPCRouter()
        router.register(Subjects.Tenants.admitRegistration, requires: .principal) { (request, call) in
            try await tenants.admitRegistration(request, call: call)
        }
        router.register(Subjects.Tenants.register, requires: .principal) { (request, call) in
            try await tenants.register(request, call: call)
        }
        router.register(Subjects.Tenants.get, requires: .tenant) { (_, call) in
            try await tenants.get(call)
        }
        router.register(Subjects.Tenants.update, requires: .tenant) { (request, call) in
            try await tenants.update(request, call: call)
        }
        router.register(Subjects.Tenants.delete, requires: .tenant) { (_, call) in
            try await tenants.delete(call)
        }
        router.register(Subjects.Tenants.getIPAllowlist, requires: .tenant) { (_, call) in
            try await tenants.getAllowlist(call)
        }
        router.register(Subjects.Tenants.setIPAllowlist, requires: .tenant) { (request, call) in
            try await tenants.setAllowlist(request, call: call)
        }
        router.register(Subjects.Tenants.inviteMember, requires: .tenant) { (request, call) in
            try await tenants.invite(request, call: call)
        }
        router.register(Subjects.Tenants.getInvitation, requires: .principal) { (request, call) in
            try await tenants.getInvitation(request, call: call)
        }
        router.register(Subjects.Tenants.acceptInvitation, requires: .principal) { (request, call) in
            try await tenants.accept(request, call: call)
        }
        router.register(Subjects.Tenants.provisionMember, requires: [.tenant, .principal]) { (request, call) in
            try await tenants.provision(request, call: call)
        }
        router.register(Subjects.Tenants.confirmOwnerEmail, requires: .principal) {
            (request, call) in
            try await tenants.confirmOwnerEmail(request, call: call)
        }
        router.register(Subjects.Tenants.cancelInvitation, requires: [.tenant, .principal]) {
            (request, call) in
            try await tenants.cancelInvitation(request, call: call)
        }
        router.register(Subjects.Tenants.resendInvitation, requires: [.tenant, .principal]) {
            (request, call) in
            try await tenants.resendInvitation(request, call: call)
        }
        router.register(Subjects.Tenants.listMemberships, requires: .principal) { (_, call) in
            try await tenants.listMemberships(call)
        }
        router.register(Subjects.Tenants.listMembers, requires: .tenant) { (_, call) in
            try await tenants.listMembers(call)
        }
        router.register(Subjects.Tenants.getMember, requires: [.tenant, .principal]) { (request, call) in
            try await tenants.getMember(request, call: call)
        }
        router.register(Subjects.Tenants.updateMember, requires: .tenant) { (request, call) in
            try await tenants.updateMember(request, call: call)
        }
        router.register(Subjects.Tenants.removeMember, requires: .tenant) { (request, call) in
            try await tenants.removeMember(request, call: call)
        }
        router.register(Subjects.Tenants.isolateMember, requires: [.tenant, .principal]) { (request, call) in
            try await tenants.isolateMember(request, call: call)
        }
        router.register(Subjects.Tenants.liftMemberIsolation, requires: [.tenant, .principal]) {
            (request, call) in
            try await tenants.liftMemberIsolation(request, call: call)
        }
        router.register(Subjects.Tenants.isolateTenant, requires: [.tenant, .principal]) { (request, call) in
            try await tenants.isolateTenant(request, call: call)
        }
        router.register(Subjects.Tenants.liftTenantIsolation, requires: [.tenant, .principal]) {
            (request, call) in
            try await tenants.liftTenantIsolation(request, call: call)
        }
        return ServiceParts(
            routes: router,
            services: [
                TenantSagaReceipts(tenants: tenants, health: context.health, logger: context.logger),
                TenantSweeper(tenants: tenants, health: context.health, logger: context.logger),
                TenantActivity(tenants: tenants, health: context.health, logger: context.logger),
            ],
            tenantLifecycle: TenantLifecycleHooks(created: { event in
                guard let tenant = TenantID(event.tenantID) else { return }
                try await tenants.addOwner(tenant)
            })
        )
    }
}
