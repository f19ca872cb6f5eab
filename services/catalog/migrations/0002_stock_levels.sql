-- The catalog's replicated copy of inventory's stock levels (from `level_changed` events):
-- eventually consistent, used only to answer `in_stock`. `event_time` is the publishing
-- time of the event that wrote the row, so an older event delivered late never overwrites
-- a newer level.
CREATE TABLE stock_levels (
    sku TEXT PRIMARY KEY,
    available BIGINT NOT NULL,
    event_time BIGINT NOT NULL
);
