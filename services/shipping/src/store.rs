//! SQL for the shipping database, portable between SQLite and PostgreSQL.

pub mod shipments;

use bazaar_store::Migration;

/// The shipping schema (messaging's tables are added by [`crate::build`]).
pub static MIGRATIONS: &[Migration] = &[Migration::new(
    1,
    "shipments and secrets",
    include_str!("../migrations/0001_shipments.sql"),
)];

/// The table of the database's generated secrets (migration 1), where
/// [`bazaar_store::cursor::CursorKey::load_or_create`] keeps the cursor key.
pub const SECRETS_TABLE: &str = "shipping_secrets";
