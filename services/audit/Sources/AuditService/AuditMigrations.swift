import ServiceKit

/// audit's tables. The same log table lives in each tenant's schema and, for platform events
/// (bans: no tenant), in `public`.
enum AuditMigrations {
    /// One chain: each row's hash is SHA-256(previous hash ‖ canonical event), so a changed,
    /// removed, inserted or reordered row breaks every hash after it.
    static let log = """
        CREATE TABLE audit_events (
            position      bigint PRIMARY KEY CHECK (position > 0),
            id            uuid NOT NULL UNIQUE,
            occurred_at   bigint NOT NULL,
            stored_at     timestamptz NOT NULL DEFAULT now(),
            action        text NOT NULL,
            actor_kind    text NOT NULL,
            actor_id      text NOT NULL,
            actor_email   text NOT NULL,
            target_type   text NOT NULL,
            target_id     text NOT NULL,
            ip            text NOT NULL,
            outcome       text NOT NULL,
            request_id    text NOT NULL,
            super_admin   boolean NOT NULL,
            event         bytea NOT NULL,
            previous_hash bytea NOT NULL CHECK (length(previous_hash) = 32),
            hash          bytea NOT NULL CHECK (length(hash) = 32)
        );
        CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at DESC, position DESC);
        CREATE INDEX audit_events_actor ON audit_events (actor_id, occurred_at DESC);
        CREATE INDEX audit_events_ip ON audit_events (ip, occurred_at DESC);
        CREATE INDEX audit_events_action ON audit_events (action, occurred_at DESC);
        -- The head of the chain, locked by whoever appends: one writer per chain at a time.
        CREATE TABLE audit_chain_head (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            position  bigint NOT NULL,
            hash      bytea NOT NULL CHECK (length(hash) = 32)
        );
        INSERT INTO audit_chain_head (position, hash) VALUES (0, decode(repeat('00', 32), 'hex'));
        """

    /// Signed checkpoints (AUD-5): the head of the chain at `position`, signed with Ed25519, so a
    /// forger who recomputes every hash after a change still cannot match them.
    static let checkpoints = """
        CREATE TABLE audit_checkpoints (
            position  bigint PRIMARY KEY CHECK (position > 0),
            head_hash bytea NOT NULL CHECK (length(head_hash) = 32),
            signed_at bigint NOT NULL,
            key_id    text NOT NULL,
            signature bytea NOT NULL CHECK (length(signature) = 64)
        );
        """

    /// Queries (AUD-3) page newest first by (occurred_at, position): each filter's index ends
    /// with both, so a page is an index range scan whatever the log's size. Retention (AUD-4)
    /// records each cut it makes.
    static let queriesAndRetention = """
        DROP INDEX audit_events_actor;
        DROP INDEX audit_events_ip;
        DROP INDEX audit_events_action;
        CREATE INDEX audit_events_actor ON audit_events (actor_id, occurred_at DESC, position DESC);
        CREATE INDEX audit_events_ip ON audit_events (ip, occurred_at DESC, position DESC);
        CREATE INDEX audit_events_action ON audit_events (action, occurred_at DESC, position DESC);
        CREATE INDEX audit_events_target ON audit_events (target_type, target_id, occurred_at DESC, position DESC);
        CREATE TABLE audit_retention_cuts (
            id             bigserial PRIMARY KEY,
            position       bigint NOT NULL CHECK (position >= 0),
            anchor_hash    bytea NOT NULL CHECK (length(anchor_hash) = 32),
            cut_at         bigint NOT NULL,
            kept_events    bigint NOT NULL,
            kept_digest    bytea NOT NULL CHECK (length(kept_digest) = 32),
            removed_events bigint NOT NULL,
            key_id         text NOT NULL,
            signature      bytea NOT NULL CHECK (length(signature) = 64)
        );
        """

    /// The plan each tenant's retention follows, from `tenant.created`.
    static let plans = """
        CREATE TABLE audit_tenant_plans (
            tenant_id  text PRIMARY KEY CHECK (tenant_id ~ '^[0-9a-f]{32}$'),
            plan       text NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        """

    /// Issue 26, finding 11: every plan a tenant had, from when. An event keeps the retention
    /// of the plan it was stored under; the tenants known so far had their plan from the start.
    static let planPeriods = """
        CREATE TABLE audit_plan_periods (
            tenant_id text NOT NULL CHECK (tenant_id ~ '^[0-9a-f]{32}$'),
            plan      text NOT NULL,
            since_ms  bigint NOT NULL,
            PRIMARY KEY (tenant_id, since_ms)
        );
        INSERT INTO audit_plan_periods (tenant_id, plan, since_ms) SELECT tenant_id, plan, 0 FROM audit_tenant_plans;
        """

    static let set = MigrationSet(
        global: [
            Migration(version: 1, name: "platform audit log", sql: log),
            Migration(version: 2, name: "platform audit checkpoints", sql: checkpoints),
            Migration(version: 3, name: "platform audit queries and retention", sql: queriesAndRetention),
            Migration(version: 4, name: "tenant plans", sql: plans),
            Migration(version: 5, name: "tenant plan periods", sql: planPeriods),
        ],
        tenant: [
            Migration(version: 1, name: "audit log", sql: log),
            Migration(version: 2, name: "audit checkpoints", sql: checkpoints),
            Migration(version: 3, name: "audit queries and retention", sql: queriesAndRetention),
        ]
    )
}
