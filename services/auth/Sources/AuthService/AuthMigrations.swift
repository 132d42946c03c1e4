import ServiceKit

/// auth's tables. Users and signing keys are global (one email, one account, possibly in
/// several tenants); what a user does inside a tenant (sessions, API keys) lives in the tenant's
/// schema.
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

    /// Token signing keys: the seed sealed with the key-encryption key ring (kid as associated
    /// data, so a row's seed cannot be moved under another kid).
    static let signingKeys = """
        CREATE TABLE signing_keys (
            kid         text PRIMARY KEY,
            public_key  bytea NOT NULL CHECK (length(public_key) = 32),
            sealed_seed text NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            retired_at  timestamptz
        );
        """

    /// A session per sign-in; its refresh tokens form one family: each is used once, and a
    /// second use of any of them revokes the session. Only SHA-256 hashes of tokens are kept.
    static let sessions = """
        CREATE TABLE sessions (
            id             uuid PRIMARY KEY,
            user_id        uuid NOT NULL,
            created_at     timestamptz NOT NULL DEFAULT now(),
            last_seen_at   timestamptz NOT NULL DEFAULT now(),
            ip             text NOT NULL,
            user_agent     text NOT NULL,
            amr            text NOT NULL,
            expires_at     timestamptz NOT NULL,
            revoked_at     timestamptz,
            revoked_reason text
        );
        CREATE INDEX sessions_user ON sessions (user_id) WHERE revoked_at IS NULL;
        CREATE TABLE refresh_tokens (
            token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
            session_id uuid NOT NULL REFERENCES sessions (id),
            issued_at  timestamptz NOT NULL DEFAULT now(),
            used_at    timestamptz
        );
        CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
        """

    /// Single-use tokens for password reset and email verification (hashes only), and the
    /// tenants each user has sessions in, so a password change ends them everywhere.
    static let accountTokens = """
        CREATE TABLE account_tokens (
            token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
            purpose    text NOT NULL CHECK (purpose IN ('password_reset', 'email_verification')),
            user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            used_at    timestamptz
        );
        CREATE TABLE user_tenants (
            user_id   uuid NOT NULL,
            tenant_id text NOT NULL CHECK (tenant_id ~ '^[0-9a-f]{32}$'),
            PRIMARY KEY (user_id, tenant_id)
        );
        """

    static let set = MigrationSet(
        global: [
            Migration(version: 1, name: "users", sql: users), Migration(version: 2, name: "signing keys", sql: signingKeys),
            Migration(version: 3, name: "account tokens", sql: accountTokens),
        ],
        tenant: [Migration(version: 1, name: "sessions", sql: sessions)]
    )
}
