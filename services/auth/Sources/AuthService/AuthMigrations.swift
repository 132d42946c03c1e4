import ServiceKit

/// auth's tables. Users are global (one email, one account, possibly in several tenants); what
/// a user does inside a tenant (sessions, API keys) will live in the tenant's schema.
enum AuthMigrations {
    static let users = """
        CREATE TABLE users (
            id                  uuid PRIMARY KEY,
            email               text NOT NULL UNIQUE CHECK (email = lower(email)),
            name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
            password_hash       text NOT NULL,
            password_changed_at timestamptz NOT NULL DEFAULT now(),
            -- pending: registration under way (the tenant not created yet); removed if it never completes.
            status              text NOT NULL CHECK (status IN ('pending', 'active', 'disabled')),
            email_verified_at   timestamptz,
            default_tenant_id   text CHECK (default_tenant_id ~ '^[0-9a-f]{32}$'),
            created_at          timestamptz NOT NULL DEFAULT now(),
            updated_at          timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX users_pending ON users (created_at) WHERE status = 'pending';
        """

    static let set = MigrationSet(global: [Migration(version: 1, name: "users", sql: users)])
}
