-- Stock per SKU. on_hand counts every unit in the warehouse, reserved the ones held for
-- orders not yet shipped; available = on_hand - reserved. Times are microseconds since the
-- Unix epoch.
CREATE TABLE stock (
    sku TEXT PRIMARY KEY,
    on_hand BIGINT NOT NULL CHECK (on_hand >= 0),
    reserved BIGINT NOT NULL CHECK (reserved >= 0),
    updated_us BIGINT NOT NULL,
    CHECK (reserved <= on_hand)
);

-- One row per order that inventory has heard of: the idempotency record of Reserve,
-- Release and Commit. status: reserved | out_of_stock | released | committed. A released row
-- without lines is a tombstone (released before anything was reserved).
CREATE TABLE reservations (
    order_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL
);

-- What a reservation holds (or, for out_of_stock, what was asked; short = 1 on the lines
-- that lacked stock).
CREATE TABLE reservation_lines (
    order_id TEXT NOT NULL,
    sku TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    short BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (order_id, sku)
);

-- The ledger: one row per change. quantity is the signed change of on_hand for
-- adjustment and commit, of reserved for reserve and release (a commit also lowers reserved
-- by -quantity). So for every SKU on_hand = SUM(adjustment, commit) and
-- reserved = SUM(reserve, release, commit).
CREATE TABLE movements (
    id TEXT PRIMARY KEY,
    sku TEXT NOT NULL,
    kind TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    order_id TEXT,
    at_us BIGINT NOT NULL
);

CREATE INDEX movements_by_sku ON movements (sku, at_us, id);
