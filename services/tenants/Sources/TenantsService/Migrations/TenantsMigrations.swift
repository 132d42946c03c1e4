import ServiceKit

/// tenants' tables: the registry and the saga's receipts in `public`; members, invitations and
/// policies in each tenant's schema.
enum TenantsMigrations {
    static let registry = """
        CREATE TABLE tenants (
            id                  text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
            name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
            slug                text NOT NULL UNIQUE,
            status              text NOT NULL CHECK (status IN ('provisioning', 'active', 'suspended', 'deleting', 'deleted')),
            plan                text NOT NULL CHECK (plan IN ('starter', 'pro', 'enterprise')),
            country             text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
            registration_number text NOT NULL,
            email_domain        text NOT NULL,
            -- Held while the tenant is on Starter: its email domain, or the owner's mailbox at a
            -- free mail provider (TEN-5). Released on upgrade and on deletion.
            starter_claim       text,
            data_region         text NOT NULL,
            owner_user_id       uuid NOT NULL,
            owner_email         text NOT NULL,
            created_at          timestamptz NOT NULL DEFAULT now(),
            activated_at        timestamptz,
            last_activity_at    timestamptz,
            -- When tenant.created or tenant.deleted was last published, so the saga can nudge.
            saga_published_at   timestamptz,
            deletion_reason     text,
            deletion_requested_at timestamptz,
            deleted_at          timestamptz
        );
        CREATE UNIQUE INDEX tenants_starter_claim ON tenants (starter_claim) WHERE starter_claim IS NOT NULL;
        CREATE INDEX tenants_in_saga ON tenants (status, saga_published_at) WHERE status IN ('provisioning', 'deleting');
        CREATE INDEX tenants_starter_activity ON tenants (coalesce(last_activity_at, created_at)) WHERE plan = 'starter' AND status = 'active';
        -- One row per service that has answered a step of the saga for a tenant.
        CREATE TABLE tenant_saga_receipts (
            tenant_id   text NOT NULL REFERENCES tenants (id),
            step        text NOT NULL CHECK (step IN ('provisioned', 'deprovisioned')),
            service     text NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, step, service)
        );
        """

    static let members = """
        CREATE TABLE members (
            user_id    uuid PRIMARY KEY,
            email      text NOT NULL UNIQUE,
            role       text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
            status     text NOT NULL CHECK (status IN ('active', 'disabled')),
            joined_at  timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        -- Only a hash of each token is kept: a leaked table accepts no one.
        CREATE TABLE invitations (
            id          uuid PRIMARY KEY,
            email       text NOT NULL,
            role        text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
            token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
            invited_by  text NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            expires_at  timestamptz NOT NULL,
            accepted_at timestamptz,
            accepted_by uuid
        );
        CREATE TABLE policies (
            singleton              boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            mfa_required           boolean NOT NULL DEFAULT false,
            sso_enforced           boolean NOT NULL DEFAULT false,
            password_rotation_days integer NOT NULL DEFAULT 0 CHECK (password_rotation_days BETWEEN 0 AND 3650),
            updated_at             timestamptz NOT NULL DEFAULT now()
        );
        INSERT INTO policies DEFAULT VALUES;
        CREATE TABLE ip_allowlist (
            network  cidr PRIMARY KEY,
            added_at timestamptz NOT NULL DEFAULT now()
        );
        """

    /// MFA-7: the policy names who must use MFA (a tenant that required it had everyone in mind).
    static let mfaRequirement = """
        ALTER TABLE policies ADD COLUMN mfa_requirement text NOT NULL DEFAULT 'none'
            CHECK (mfa_requirement IN ('none', 'admins', 'everyone'));
        UPDATE policies SET mfa_requirement = 'everyone' WHERE mfa_required;
        ALTER TABLE policies DROP COLUMN mfa_required;
        """

    /// TEN-10: a person in several tenants. The index of who belongs where (each tenant's
    /// `members` stays the truth of role and status).
    static let memberships = """
        CREATE TABLE memberships (
            user_id   uuid NOT NULL,
            tenant_id text NOT NULL REFERENCES tenants (id),
            joined_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (user_id, tenant_id)
        );
        """

    /// Invitations can be cancelled; the tenant's existing members enter the index (the schema
    /// is `t_<tenant id>`, so its name gives the tenant).
    static let invitationCancellation = """
        ALTER TABLE invitations ADD COLUMN cancelled_at timestamptz;
        INSERT INTO public.memberships (user_id, tenant_id, joined_at)
            SELECT user_id, substr(current_schema(), 3), joined_at FROM members ON CONFLICT DO NOTHING;
        """

    /// AUTH-11: a Starter claim is provisional until the owner's address is verified, and
    /// lapses at `starter_claim_until` (NULL: held for good; existing claims stay held).
    static let provisionalClaims = """
        ALTER TABLE tenants ADD COLUMN owner_email_verified_at timestamptz, ADD COLUMN starter_claim_until timestamptz;
        UPDATE tenants SET owner_email_verified_at = created_at;
        """

    /// IR-1: who isolated a tenant, when and why (its status is then `suspended`).
    static let tenantIsolation = """
        ALTER TABLE tenants ADD COLUMN isolated_at timestamptz, ADD COLUMN isolated_by text, ADD COLUMN isolation_reason text;
        """

    /// IR-1: who isolated a member, when and why (their status is then `disabled`).
    static let memberIsolation = """
        ALTER TABLE members ADD COLUMN isolated_at timestamptz, ADD COLUMN isolated_by text, ADD COLUMN isolation_reason text;
        """

    /// SSO-2: the owners who may still sign in with a password while SSO is enforced.
    static let breakGlassOwners = """
        ALTER TABLE policies ADD COLUMN break_glass_owners uuid[] NOT NULL DEFAULT '{}' CHECK (cardinality(break_glass_owners) <= 2);
        """

    static let set = MigrationSet(
        global: [
            Migration(version: 1, name: "registry", sql: registry), Migration(version: 2, name: "memberships", sql: memberships),
            Migration(version: 3, name: "provisional starter claims", sql: provisionalClaims),
            Migration(version: 4, name: "tenant isolation", sql: tenantIsolation),
        ],
        tenant: [
            Migration(version: 1, name: "members", sql: members), Migration(version: 2, name: "mfa requirement", sql: mfaRequirement),
            Migration(version: 3, name: "invitation cancellation, memberships", sql: invitationCancellation),
            Migration(version: 4, name: "member isolation", sql: memberIsolation),
            Migration(version: 5, name: "break-glass owners", sql: breakGlassOwners),
        ]
    )
}
