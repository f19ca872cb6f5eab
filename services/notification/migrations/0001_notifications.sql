-- One notification per user-facing event. Ids are UUIDv7 text: their order is creation order,
-- so a user's list pages on (user_id, id). `event_id` is unique: whatever the inbox lets
-- through twice still makes one notification. `read` is 0/1; times are microseconds.
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    order_id TEXT NULL,
    message TEXT NOT NULL,
    read BIGINT NOT NULL,
    created_us BIGINT NOT NULL,
    event_id TEXT NOT NULL UNIQUE
);

CREATE INDEX notifications_by_user ON notifications (user_id, id);
CREATE INDEX notifications_unread ON notifications (user_id, read);

-- Per-database secrets, e.g. the key that signs list cursors (shared by every replica).
CREATE TABLE notification_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
