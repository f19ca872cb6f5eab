-- Charges, one per idempotency key: a retry with the same key finds the first charge instead
-- of making a second one. Money is in minor units; times are microseconds since the epoch.
CREATE TABLE psp_charges (
    idempotency_key TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    card_token TEXT NOT NULL,
    decline_code TEXT,
    refunded_minor BIGINT NOT NULL,
    created_us BIGINT NOT NULL
);

-- Refunds of captured charges, one per idempotency key.
CREATE TABLE psp_refunds (
    idempotency_key TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    charge_idempotency_key TEXT NOT NULL REFERENCES psp_charges (idempotency_key),
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    created_us BIGINT NOT NULL
);
