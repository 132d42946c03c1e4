import ServiceKit

/// webhooks' tables: the delivery queue shared by every replica in `public`; endpoints and
/// deliveries (the payload as signed) in each tenant's schema.
enum WebhooksMigrations {
    /// What is due, across tenants. A replica claims rows with `FOR UPDATE SKIP LOCKED` and pushes
    /// their `due_at` past the attempt's deadline, so a replica that dies mid-delivery leaves the
    /// row due again for another; the attempt's outcome sets the next `due_at` or removes the row.
    static let queue = """
        CREATE TABLE delivery_queue (
            tenant_id   text NOT NULL CHECK (tenant_id ~ '^[0-9a-f]{32}$'),
            delivery_id uuid NOT NULL,
            due_at      timestamptz NOT NULL,
            PRIMARY KEY (tenant_id, delivery_id)
        );
        CREATE INDEX delivery_queue_due ON delivery_queue (due_at);
        """

    static let endpoints = """
        CREATE TABLE endpoints (
            id                         uuid PRIMARY KEY,
            url                        text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
            description                text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
            event_types                text[] NOT NULL CHECK (cardinality(event_types) BETWEEN 1 AND 50),
            enabled                    boolean NOT NULL DEFAULT true,
            disabled_reason            text NOT NULL DEFAULT '' CHECK (disabled_reason IN ('', 'gone', 'failing')),
            -- Sealed with the key ring, bound to the tenant and endpoint.
            secret_sealed              bytea NOT NULL,
            previous_secret_sealed     bytea,
            previous_secret_expires_at timestamptz,
            failing_since              timestamptz,
            created_at                 timestamptz NOT NULL DEFAULT now(),
            updated_at                 timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE deliveries (
            id              uuid PRIMARY KEY,
            endpoint_id     uuid NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
            event_id        uuid NOT NULL,
            event_type      text NOT NULL,
            -- The body exactly as signed and sent: every attempt sends the same bytes.
            payload         text NOT NULL,
            status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'dead')),
            attempts        integer NOT NULL DEFAULT 0,
            response_status integer NOT NULL DEFAULT 0,
            last_error      text NOT NULL DEFAULT '',
            latency_ms      bigint NOT NULL DEFAULT 0,
            created_at      timestamptz NOT NULL,
            last_attempt_at timestamptz,
            next_attempt_at timestamptz,
            UNIQUE (endpoint_id, event_id)
        );
        CREATE INDEX deliveries_log ON deliveries (endpoint_id, created_at DESC, id DESC);
        """

    /// WH-5: the event IDs each provider's events were accepted under, so a repeat is dropped.
    static let inbound = """
        CREATE TABLE inbound_events (
            provider    text NOT NULL CHECK (provider ~ '^[a-z0-9_-]{1,32}$'),
            event_id    text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 255),
            received_at timestamptz NOT NULL,
            PRIMARY KEY (provider, event_id)
        );
        CREATE INDEX inbound_events_age ON inbound_events (received_at);
        """

    /// IR-1: tenants isolated by their owners or the platform; their deliveries wait in the queue.
    static let pausedTenants = """
        CREATE TABLE paused_tenants (
            tenant_id text PRIMARY KEY CHECK (tenant_id ~ '^[0-9a-f]{32}$'),
            paused_at timestamptz NOT NULL DEFAULT now()
        );
        """

    static let set = MigrationSet(
        global: [
            Migration(version: 1, name: "delivery queue", sql: queue), Migration(version: 2, name: "inbound events", sql: inbound),
            Migration(version: 3, name: "paused tenants", sql: pausedTenants),
        ],
        tenant: [Migration(version: 1, name: "endpoints", sql: endpoints)]
    )
}
