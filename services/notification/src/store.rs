//! SQL for the notification database, portable between SQLite and PostgreSQL.

pub mod notifications;

use bazaar_store::Migration;

/// The notification schema (messaging's tables are added by [`crate::build`]).
pub static MIGRATIONS: &[Migration] = &[Migration::new(
    1,
    "notifications and secrets",
    include_str!("../migrations/0001_notifications.sql"),
)];

/// The table of the database's generated secrets (migration 1), where
/// [`bazaar_store::cursor::CursorKey::load_or_create`] keeps the cursor key.
pub const SECRETS_TABLE: &str = "notification_secrets";
