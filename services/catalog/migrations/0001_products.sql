-- Products. Ids are UUIDv7 text: their text order is creation order, so lists page on id.
-- Money is in minor units; times are microseconds since the Unix epoch.
CREATE TABLE products (
    id TEXT PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    category TEXT NOT NULL,
    price_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX products_by_category ON products (category, id);

-- Per-database secrets, e.g. the key that signs list cursors. Kept here rather than in the
-- settings so that every replica of the catalog shares it and it survives restarts.
CREATE TABLE catalog_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
