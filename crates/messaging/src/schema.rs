//! The messaging tables, added to every service's own migrations (versions 9001+).

use bazaar_store::Migration;

/// The outbox, inbox (with the number of redeliveries each event had after it was processed),
/// cursor, dead-letter and lease tables. A service applies them with its own
/// migrations: `Db::open_for_service(name, dir, url, &[svc, MIGRATIONS].concat())`.
pub static MIGRATIONS: &[Migration] = &[
    Migration::new(
        9001,
        "messaging outbox",
        "CREATE TABLE msg_outbox (\
            id TEXT PRIMARY KEY, \
            type TEXT NOT NULL, \
            subject TEXT, \
            envelope TEXT NOT NULL, \
            created_us BIGINT NOT NULL, \
            pos BIGINT NULL UNIQUE\
         );\
         CREATE INDEX msg_outbox_unsent ON msg_outbox (created_us, id) WHERE pos IS NULL;",
    ),
    Migration::new(
        9002,
        "messaging inbox",
        "CREATE TABLE msg_inbox (\
            subscription TEXT NOT NULL, \
            event_id TEXT NOT NULL, \
            processed_us BIGINT NOT NULL, \
            PRIMARY KEY (subscription, event_id)\
         );",
    ),
    Migration::new(
        9003,
        "messaging feed cursors",
        "CREATE TABLE msg_cursors (subscription TEXT PRIMARY KEY, pos BIGINT NOT NULL);",
    ),
    Migration::new(
        9004,
        "messaging dead letters",
        "CREATE TABLE msg_dead_letters (\
            id TEXT PRIMARY KEY, \
            subscription TEXT NOT NULL, \
            event_id TEXT NOT NULL, \
            type TEXT NOT NULL, \
            envelope TEXT NOT NULL, \
            error TEXT NOT NULL, \
            attempts BIGINT NOT NULL, \
            created_us BIGINT NOT NULL, \
            status TEXT NOT NULL, \
            updated_us BIGINT NOT NULL, \
            UNIQUE (subscription, event_id)\
         );\
         CREATE INDEX msg_dead_letters_status ON msg_dead_letters (status, id);",
    ),
    Migration::new(
        9005,
        "messaging consumer leases",
        "CREATE TABLE msg_leases (subscription TEXT PRIMARY KEY, holder TEXT NOT NULL, until_us BIGINT NOT NULL);",
    ),
    Migration::new(
        9006,
        "messaging inbox duplicates",
        "ALTER TABLE msg_inbox ADD COLUMN duplicates BIGINT NOT NULL DEFAULT 0;",
    ),
];
