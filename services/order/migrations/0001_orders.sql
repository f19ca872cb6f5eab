-- Orders. Ids are UUIDv7 text (text order = creation order); money in minor units; times in
-- microseconds since the Unix epoch; booleans as 0/1. `items` and `shipping_address` are JSON
-- text: they are written once at placement and only ever read back whole.
CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT,
    items TEXT NOT NULL,
    total_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    shipping_address TEXT NOT NULL,
    card_token TEXT NOT NULL,
    payment_status TEXT NOT NULL,
    shipment_status TEXT NOT NULL,
    tracking_number TEXT,
    -- Set once by a customer's cancel (or an operator's abort); refuses the shipment claim.
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    -- Set once by shipping's claim; refuses a cancel.
    shipment_claimed BIGINT NOT NULL DEFAULT 0,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL
);

CREATE INDEX orders_by_user ON orders (user_id, id);

-- Every status an order went through, in order.
CREATE TABLE order_history (
    order_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    at_us BIGINT NOT NULL,
    PRIMARY KEY (order_id, seq)
);

-- Idempotency keys of POST /api/v1/orders, per user. `order_id` is NULL while the first
-- request is running; `created_us` doubles as the claim of that request (a takeover of a
-- crashed attempt rewrites it).
CREATE TABLE idempotency_keys (
    user_id TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    order_id TEXT,
    created_us BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
);

CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_us);

-- The state of each order's saga: the step to run next and who runs it (a lease).
CREATE TABLE sagas (
    order_id TEXT PRIMARY KEY,
    step TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_us BIGINT NOT NULL,
    -- While the order is payment_pending: when the saga gives up on the payment provider.
    deadline_us BIGINT,
    -- A fencing token, fresh for every claim: an outcome is recorded only by the holder.
    lease_owner TEXT,
    lease_until_us BIGINT NOT NULL,
    last_error TEXT,
    -- The trace the order was placed in, continued by every step.
    traceparent TEXT,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL
);

CREATE INDEX sagas_due ON sagas (status, next_attempt_us);

-- What each saga did, for operators.
CREATE TABLE saga_log (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    at_us BIGINT NOT NULL,
    step TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT
);

CREATE INDEX saga_log_by_order ON saga_log (order_id, id);

-- The local replica of the catalog's prices (product_created / product_updated events).
CREATE TABLE prices (
    product_id TEXT PRIMARY KEY,
    sku TEXT NOT NULL,
    name TEXT NOT NULL,
    price_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    updated_us BIGINT NOT NULL
);

-- The order-history read model (CQRS), projected from events; GET /api/v1/orders reads it.
-- `status_rank` only grows, so events applied out of order never move an order backwards.
CREATE TABLE order_views (
    order_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT,
    status_rank BIGINT NOT NULL,
    total_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    item_count BIGINT NOT NULL,
    payment_status TEXT NOT NULL,
    shipment_status TEXT NOT NULL,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL
);

CREATE INDEX order_views_by_user ON order_views (user_id, order_id);

-- Per-database secrets (the key that signs list cursors), shared by every replica.
CREATE TABLE order_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
