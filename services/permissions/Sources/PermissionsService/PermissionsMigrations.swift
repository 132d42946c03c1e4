import ServiceKit

/// permissions' tables. Roles and what they grant are data in each tenant's schema (PERM-1), so
/// a tenant's mapping can change without a release; the seed is the SPEC's default.
enum PermissionsMigrations {
    /// What each API key scope lets a key do (KEY-2), the same for every tenant because auth's
    /// scope list is global. `resource_homes` is no longer written: resources became per tenant
    /// (tenant migration 2, which copies each tenant's claims from it). A later release drops it
    /// once every schema has run that migration.
    static let global = """
        CREATE TABLE resource_homes (
            resource_type text NOT NULL,
            resource_id   text NOT NULL,
            tenant_id     text NOT NULL CHECK (tenant_id ~ '^[0-9a-f]{32}$'),
            claimed_at    timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (resource_type, resource_id)
        );
        CREATE INDEX resource_homes_tenant ON resource_homes (tenant_id);
        CREATE TABLE scope_permissions (
            scope      text NOT NULL,
            permission text NOT NULL,
            PRIMARY KEY (scope, permission)
        );
        INSERT INTO scope_permissions (scope, permission) VALUES
            ('boards:read', 'boards.read'),
            ('boards:write', 'boards.write'), ('boards:write', 'boards.create'),
            ('items:read', 'items.read'), ('items:write', 'items.write'),
            ('updates:read', 'updates.read'), ('updates:write', 'updates.write');
        """

    static let tenant = """
        -- scope 'tenant': tenant roles; any other scope is a resource type and its roles.
        CREATE TABLE role_permissions (
            scope      text NOT NULL CHECK (scope ~ '^[a-z][a-z0-9_]{0,31}$'),
            role       text NOT NULL CHECK (role ~ '^[a-z][a-z0-9_]{0,31}$'),
            permission text NOT NULL CHECK (permission ~ '^[a-z][a-z0-9_]{0,31}\\.[a-z][a-z0-9_]{0,31}$'),
            PRIMARY KEY (scope, role, permission)
        );
        INSERT INTO role_permissions (scope, role, permission)
            SELECT 'tenant', role, permission FROM
                (VALUES ('owner'), ('admin')) AS roles (role),
                (VALUES ('members.manage'), ('audit.read'), ('api_keys.manage'), ('webhooks.manage'), ('settings.manage'),
                        ('boards.create'), ('boards.read'), ('boards.write'), ('boards.delete'), ('boards.share'),
                        ('items.read'), ('items.write'), ('updates.read'), ('updates.write')) AS permissions (permission)
            UNION ALL SELECT 'tenant', 'owner', 'tenant.delete'
            UNION ALL SELECT 'tenant', 'member', 'boards.create'
            UNION ALL SELECT 'boards', 'owner', permission FROM
                (VALUES ('boards.read'), ('boards.write'), ('boards.delete'), ('boards.share'),
                        ('items.read'), ('items.write'), ('updates.read'), ('updates.write')) AS permissions (permission)
            UNION ALL SELECT 'boards', 'editor', permission FROM
                (VALUES ('boards.read'), ('boards.write'), ('items.read'), ('items.write'), ('updates.read'), ('updates.write')) AS permissions (permission)
            UNION ALL SELECT 'boards', 'viewer', permission FROM
                (VALUES ('boards.read'), ('items.read'), ('updates.read')) AS permissions (permission);

        -- The tenant roles, copied from `tenants` (which owns membership) on every member change.
        CREATE TABLE members (
            user_id        uuid PRIMARY KEY,
            email          text NOT NULL,
            role           text NOT NULL,
            status         text NOT NULL CHECK (status IN ('active', 'disabled')),
            last_active_at timestamptz,
            synced_at      timestamptz NOT NULL DEFAULT now()
        );
        -- A member who leaves the tenant leaves its resources too.
        CREATE TABLE resource_roles (
            resource_type text NOT NULL,
            resource_id   text NOT NULL,
            user_id       uuid NOT NULL REFERENCES members (user_id) ON DELETE CASCADE,
            role          text NOT NULL,
            granted_by    text NOT NULL,
            granted_at    timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (resource_type, resource_id, user_id)
        );
        CREATE INDEX resource_roles_user ON resource_roles (user_id);
        -- The consistency token (PERM-6): every write bumps it in its own transaction, which
        -- also serialises a tenant's writes (the last-owner guard relies on that).
        CREATE TABLE policy_revision (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            revision  bigint NOT NULL CHECK (revision >= 0)
        );
        INSERT INTO policy_revision (revision) VALUES (0);
        CREATE TABLE access_reviews (
            id           bigserial PRIMARY KEY,
            completed_at timestamptz NOT NULL DEFAULT now(),
            completed_by text NOT NULL,
            note         text NOT NULL
        );
        CREATE TABLE tenant_facts (
            singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            provisioned_at timestamptz NOT NULL DEFAULT now()
        );
        INSERT INTO tenant_facts DEFAULT VALUES;
        """

    /// A resource is identified by its tenant and its ID (issue 26, finding 12): a global,
    /// first-come claim let one tenant squat IDs another would use, and told it whether another
    /// tenant had. The row outlives the resource's bindings, so a resource whose last holder left
    /// is still known to exist: binding it again takes `<type>.share`, not `<type>.create`.
    static let resources = """
        CREATE TABLE resources (
            resource_type text NOT NULL,
            resource_id   text NOT NULL,
            created_by    text NOT NULL,
            created_at    timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (resource_type, resource_id)
        );
        INSERT INTO resources (resource_type, resource_id, created_by)
            SELECT DISTINCT ON (resource_type, resource_id) resource_type, resource_id, granted_by FROM resource_roles
            ORDER BY resource_type, resource_id, granted_at;
        -- This tenant's claims of the global table, bound or not. current_schema() is t_<tenant>.
        DO $$
        BEGIN
            IF to_regclass('public.resource_homes') IS NOT NULL THEN
                INSERT INTO resources (resource_type, resource_id, created_by, created_at)
                    SELECT resource_type, resource_id, 'system:migration', claimed_at FROM public.resource_homes
                    WHERE tenant_id = substr(current_schema(), 3)
                ON CONFLICT (resource_type, resource_id) DO NOTHING;
            END IF;
        END
        $$;
        """

    /// SSO-1: owners and admins manage the tenant's SSO connections and domains.
    static let ssoManage = """
        INSERT INTO role_permissions (scope, role, permission)
            VALUES ('tenant', 'owner', 'sso.manage'), ('tenant', 'admin', 'sso.manage')
            ON CONFLICT DO NOTHING;
        """

    static let set = MigrationSet(
        global: [Migration(version: 1, name: "resource homes and API key scopes", sql: global)],
        tenant: [
            Migration(version: 1, name: "roles, members, resource roles, revision, reviews", sql: tenant),
            Migration(version: 2, name: "resources per tenant", sql: resources),
            Migration(version: 3, name: "sso.manage", sql: ssoManage),
        ]
    )
}
