-- One payment per order. Money is in minor units; times are microseconds since the epoch.
-- `psp_charge_key` is the idempotency key the processor knows the charge by
-- (`order-<order_id>`): every attempt sends the same key, so a retry can never charge twice.
-- Card tokens are the processor's test tokens, not card numbers, so they are kept as sent.
CREATE TABLE payments (
    order_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    card_token TEXT NOT NULL,
    psp_charge_key TEXT NOT NULL,
    psp_charge_id TEXT,
    captured_minor BIGINT NOT NULL,
    refunded_minor BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    decline_reason TEXT,
    refund_reason TEXT,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL
);

-- Refunds asked for by events (shipping failed), performed by a background worker: the
-- consumer's transaction only records the request, so it never waits on the processor.
-- One per order: a second request for the same order adds nothing to do.
CREATE TABLE payment_refund_requests (
    order_id TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    event_id TEXT NOT NULL,
    requested_us BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_us BIGINT NOT NULL,
    done_us BIGINT,
    outcome TEXT,
    last_error TEXT
);

CREATE INDEX payment_refund_requests_due ON payment_refund_requests (done_us, next_attempt_us);
