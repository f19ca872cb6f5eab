-- One shipment per confirmed order. The row is the durable state of the wait and of the
-- claim/dispatch steps: a worker leases due rows (lease_owner, lease_until_us) so two
-- instances never work on the same shipment, and a crashed worker's lease simply expires.
-- Times are microseconds since the Unix epoch.
CREATE TABLE shipments (
    order_id TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    postal_code TEXT NOT NULL,
    tracking_number TEXT NULL,
    reason TEXT NULL,
    last_error TEXT NULL,
    -- The trace of the confirmation, continued by the worker's claim and events.
    traceparent TEXT NULL,
    due_us BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_us BIGINT NOT NULL,
    lease_owner TEXT NULL,
    lease_until_us BIGINT NULL,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL
);

-- The worker's scan: open shipments by when they are next due.
CREATE INDEX shipments_open ON shipments (status, next_attempt_us);

-- Per-database secrets, e.g. the key that signs list cursors (shared by every replica).
CREATE TABLE shipping_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
