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

    /// API keys (KEY-1..4). The scope list is data (an operator adds rows); the directory maps
    /// a key's prefix to its tenant, so a presented key finds its row without a tenant named.
    /// A key's row keeps only the keyed hash of its secret and the ring key that made it.
    static let apiKeyScopes = """
        CREATE TABLE api_key_scopes (
            name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,30}:[a-z][a-z0-9_]{0,30}$'),
            description text NOT NULL
        );
        INSERT INTO api_key_scopes (name, description) VALUES
            ('boards:read', 'read boards'), ('boards:write', 'create, change and delete boards'),
            ('items:read', 'read items'), ('items:write', 'create, change and delete items'),
            ('updates:read', 'read updates'), ('updates:write', 'post and change updates');
        CREATE TABLE api_key_directory (
            prefix     text PRIMARY KEY CHECK (prefix ~ '^rk_[a-z0-9]{8}$'),
            tenant_id  text NOT NULL CHECK (tenant_id ~ '^[0-9a-f]{32}$'),
            api_key_id uuid NOT NULL
        );
        """

    static let apiKeys = """
        CREATE TABLE api_keys (
            id                    uuid PRIMARY KEY,
            prefix                text NOT NULL UNIQUE CHECK (prefix ~ '^rk_[a-z0-9]{8}$'),
            secret_hash           bytea NOT NULL CHECK (length(secret_hash) = 32),
            hash_key_id           text NOT NULL,
            name                  text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
            created_by            uuid NOT NULL,
            scopes                text[] NOT NULL CHECK (cardinality(scopes) >= 1),
            rate_limit_per_minute integer NOT NULL CHECK (rate_limit_per_minute BETWEEN 1 AND 10000),
            created_at            timestamptz NOT NULL DEFAULT now(),
            expires_at            timestamptz,
            last_used_at          timestamptz,
            last_used_ip          text,
            replaced_by           uuid REFERENCES api_keys (id),
            revoked_at            timestamptz,
            revoked_reason        text
        );
        CREATE INDEX api_keys_live ON api_keys (created_by) WHERE revoked_at IS NULL;
        """

    /// PERM-3: the platform super-admin is a flag on the user, set from configuration
    /// (`RAMPART_AUTH_SUPER_ADMINS`) at every start, never a role inside a tenant.
    static let superAdmin = """
        ALTER TABLE users ADD COLUMN super_admin boolean NOT NULL DEFAULT false;
        """

    /// MFA-1..5: a user's TOTP secret (sealed, bound to the user) with the last time step
    /// accepted, so that a code is never accepted twice; backup codes as keyed hashes.
    static let mfa = """
        CREATE TABLE mfa_totp (
            user_id       uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
            secret_sealed bytea NOT NULL,
            confirmed_at  timestamptz,
            last_step     bigint NOT NULL DEFAULT -1,
            created_at    timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE mfa_backup_codes (
            user_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            code_hash bytea NOT NULL,
            key_id    text NOT NULL,
            used_at   timestamptz,
            PRIMARY KEY (user_id, code_hash)
        );
        """

    /// MFA-4: the second step of a sign-in, earned by the password step: single use, bound to
    /// the user and the tenant chosen, short-lived, and spent after five wrong codes.
    static let mfaChallenges = """
        CREATE TABLE mfa_challenges (
            token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
            user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            tenant_id  text NOT NULL CHECK (tenant_id ~ '^[0-9a-f]{32}$'),
            attempts   integer NOT NULL DEFAULT 0,
            expires_at timestamptz NOT NULL,
            used_at    timestamptz
        );
        CREATE INDEX mfa_challenges_expiry ON mfa_challenges (expires_at);
        """

    /// MFA-7: a challenge either verifies a code of an enrolled user or, when the tenant requires
    /// MFA of someone without it, leads them through enrolment before the session opens.
    static let mfaEnrolmentChallenges = """
        ALTER TABLE mfa_challenges ADD COLUMN purpose text NOT NULL DEFAULT 'verify' CHECK (purpose IN ('verify', 'enroll'));
        """

    /// IR-1: a person isolated by a platform super-admin is `disabled`, with who, when and why.
    static let isolation = """
        ALTER TABLE users ADD COLUMN isolated_at timestamptz, ADD COLUMN isolated_by text, ADD COLUMN isolation_reason text;
        """

    /// Issue 26, finding 2: wrong second-factor codes per account across challenges (pruned past
    /// the counting window), and the lock they lead to. The lock row is also what serialises a
    /// user's failures.
    static let secondFactorLock = """
        CREATE TABLE mfa_failures (
            user_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            failed_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX mfa_failures_user ON mfa_failures (user_id, failed_at);
        CREATE TABLE mfa_locks (
            user_id      uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
            locked_until timestamptz NOT NULL,
            locks        integer NOT NULL
        );
        """

    /// Step-up: when the session last proved every factor the account has (sign-in, then each
    /// step-up); sessions from before it count from when they opened.
    static let sessionAuthenticationTime = """
        ALTER TABLE sessions ADD COLUMN authenticated_at timestamptz;
        UPDATE sessions SET authenticated_at = created_at;
        ALTER TABLE sessions ALTER COLUMN authenticated_at SET NOT NULL, ALTER COLUMN authenticated_at SET DEFAULT now();
        """

    /// SSO-3: the email domains tenants claim and prove they own by a DNS TXT record. Several
    /// tenants may claim a domain; one alone may have it verified.
    static let ssoDomains = """
        CREATE TABLE sso_domains (
            domain      text NOT NULL CHECK (domain ~ '^[a-z0-9.-]{1,253}$'),
            tenant_id   text NOT NULL CHECK (tenant_id ~ '^[0-9a-f]{32}$'),
            challenge   text NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            verified_at timestamptz,
            PRIMARY KEY (domain, tenant_id)
        );
        CREATE UNIQUE INDEX sso_domains_verified ON sso_domains (domain) WHERE verified_at IS NOT NULL;
        CREATE INDEX sso_domains_tenant ON sso_domains (tenant_id);
        """

    /// SSO-1, SSO-2: a tenant's OpenID Connect providers; the client secret sealed with the key
    /// ring, bound to its connection.
    static let ssoConnections = """
        CREATE TABLE sso_connections (
            id                   uuid PRIMARY KEY,
            preset               text NOT NULL CHECK (preset IN ('google', 'microsoft', 'okta', 'oidc')),
            issuer               text NOT NULL,
            client_id            text NOT NULL,
            client_secret_sealed text NOT NULL,
            domains              text[] NOT NULL DEFAULT '{}',
            test_users           text[] NOT NULL DEFAULT '{}',
            state                text NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'testing', 'active')),
            email_claim          text,
            name_claim           text,
            trust_provider_mfa   boolean NOT NULL DEFAULT false,
            id_token_algorithms  text[] NOT NULL DEFAULT '{}',
            created_at           timestamptz NOT NULL DEFAULT now(),
            updated_at           timestamptz NOT NULL DEFAULT now()
        );
        """

    /// SSO-3: which tenant a connection ID belongs to (a sign-in names the connection alone), and
    /// each sign-in under way: its state and browser binding stored as hashes, spent once.
    static let ssoSignIns = """
        CREATE TABLE sso_connection_directory (
            connection_id uuid PRIMARY KEY,
            tenant_id     text NOT NULL CHECK (tenant_id ~ '^[0-9a-f]{32}$')
        );
        CREATE TABLE sso_sign_ins (
            state_hash    bytea PRIMARY KEY,
            browser_hash  bytea NOT NULL,
            tenant_id     text NOT NULL CHECK (tenant_id ~ '^[0-9a-f]{32}$'),
            connection_id uuid NOT NULL,
            nonce         text NOT NULL,
            code_verifier text NOT NULL,
            email_hint    text,
            return_to     text NOT NULL,
            created_at    timestamptz NOT NULL DEFAULT now(),
            expires_at    timestamptz NOT NULL,
            used_at       timestamptz
        );
        CREATE INDEX sso_sign_ins_expiry ON sso_sign_ins (expires_at);
        """

    /// SSO-3: the provider's subject each person signed in as, per connection: once linked, an
    /// ID token with the same address but another subject is not that person.
    static let ssoIdentities = """
        CREATE TABLE sso_identities (
            connection_id uuid NOT NULL REFERENCES sso_connections (id) ON DELETE CASCADE,
            subject       text NOT NULL,
            user_id       uuid NOT NULL,
            linked_at     timestamptz NOT NULL DEFAULT now(),
            last_used_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (connection_id, subject),
            UNIQUE (connection_id, user_id)
        );
        """

    /// SSO-4: Sign in with Google. A pending sign-in is either through a tenant's connection
    /// (`sso`), with the platform's Google client (`google`), or a signed-in person linking
    /// Google from their settings (`google_link`, with the person). One Google account per
    /// account, one account per Google account, by Google's subject (never by address).
    static let googleIdentities = """
        ALTER TABLE sso_sign_ins
            ALTER COLUMN connection_id DROP NOT NULL,
            ALTER COLUMN tenant_id DROP NOT NULL,
            ADD COLUMN purpose text NOT NULL DEFAULT 'sso' CHECK (purpose IN ('sso', 'google', 'google_link')),
            ADD COLUMN user_id uuid;
        ALTER TABLE sso_sign_ins ADD CONSTRAINT sso_sign_ins_purpose CHECK (
            (purpose = 'sso') = (connection_id IS NOT NULL AND tenant_id IS NOT NULL)
            AND (purpose = 'google_link') = (user_id IS NOT NULL AND tenant_id IS NOT NULL)
        );
        CREATE TABLE google_identities (
            subject      text PRIMARY KEY CHECK (length(subject) BETWEEN 1 AND 255),
            user_id      uuid NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
            email        text NOT NULL,
            linked_at    timestamptz NOT NULL DEFAULT now(),
            last_used_at timestamptz NOT NULL DEFAULT now()
        );
        """

    static let set = MigrationSet(
        global: [
            Migration(version: 1, name: "users", sql: users), Migration(version: 2, name: "signing keys", sql: signingKeys),
            Migration(version: 3, name: "account tokens", sql: accountTokens),
            Migration(version: 4, name: "api key scopes", sql: apiKeyScopes),
            Migration(version: 5, name: "super-admin flag", sql: superAdmin),
            Migration(version: 6, name: "mfa", sql: mfa),
            Migration(version: 7, name: "mfa challenges", sql: mfaChallenges),
            Migration(version: 8, name: "mfa enrolment challenges", sql: mfaEnrolmentChallenges),
            Migration(version: 9, name: "isolation", sql: isolation),
            Migration(version: 10, name: "second-factor lock", sql: secondFactorLock),
            Migration(version: 11, name: "sso domains", sql: ssoDomains),
            Migration(version: 12, name: "sso sign-ins", sql: ssoSignIns),
            Migration(version: 13, name: "google identities", sql: googleIdentities),
        ],
        tenant: [
            Migration(version: 1, name: "sessions", sql: sessions), Migration(version: 2, name: "api keys", sql: apiKeys),
            Migration(version: 3, name: "session authentication time", sql: sessionAuthenticationTime),
            Migration(version: 4, name: "sso connections", sql: ssoConnections),
            Migration(version: 5, name: "sso identities", sql: ssoIdentities),
        ]
    )
}
