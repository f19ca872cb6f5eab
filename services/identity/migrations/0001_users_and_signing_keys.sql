-- Accounts. email is stored normalised (trimmed, lower-cased), so the unique index is the
-- duplicate check. roles is a comma-separated list of role names ("customer,admin").
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    roles         TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- Ed25519 signing keys. pkcs8 is the PKCS#8 v2 DER document, base64 (standard, padded).
-- The current key is the newest one with retired_at NULL; a retired key stays published
-- until retired_at + token lifetime + 60 s.
CREATE TABLE signing_keys (
    kid        TEXT PRIMARY KEY,
    pkcs8      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT NULL
);

-- One row, updated first by every transaction that creates or retires keys: on PostgreSQL
-- its row lock queues concurrent rotations (and first starts) of several replicas, so they
-- never leave two current keys behind. SQLite has one writer anyway.
CREATE TABLE signing_key_lock (
    id         BIGINT PRIMARY KEY,
    generation BIGINT NOT NULL
);
INSERT INTO signing_key_lock (id, generation) VALUES (1, 0);
