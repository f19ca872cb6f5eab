//! SQL for the order database, portable between SQLite and PostgreSQL.
//!
//! Every transaction that touches both an order and its saga locks the `orders` row first
//! (by updating it) and the `sagas` row second, so concurrent writers on PostgreSQL queue
//! behind each other instead of deadlocking.

pub mod idempotency;
pub mod orders;
pub mod prices;
pub mod sagas;
pub mod views;

use anyhow::Context as _;
use bazaar_store::Migration;
use sqlx::{any::AnyRow, Row};

/// The order schema, applied in order by [`bazaar_store::Db::open_for_service`] (together
/// with [`bazaar_messaging::MIGRATIONS`]).
pub static MIGRATIONS: &[Migration] = &[Migration::new(
    1,
    "orders, sagas, idempotency keys, prices, order views",
    include_str!("../migrations/0001_orders.sql"),
)];

/// The table of the database's generated secrets (migration 1), where
/// [`bazaar_store::cursor::CursorKey::load_or_create`] keeps the cursor key.
pub const SECRETS_TABLE: &str = "order_secrets";

/// Every migration the order database needs: its own and the messaging tables.
pub fn all_migrations() -> Vec<Migration> {
    [MIGRATIONS, bazaar_messaging::MIGRATIONS].concat()
}

pub(crate) fn text(row: &AnyRow, col: &str) -> anyhow::Result<String> {
    row.try_get::<String, _>(col)
        .with_context(|| format!("column {col}"))
}

pub(crate) fn opt_text(row: &AnyRow, col: &str) -> anyhow::Result<Option<String>> {
    row.try_get::<Option<String>, _>(col)
        .with_context(|| format!("column {col}"))
}

pub(crate) fn int(row: &AnyRow, col: &str) -> anyhow::Result<i64> {
    row.try_get::<i64, _>(col)
        .with_context(|| format!("column {col}"))
}

pub(crate) fn opt_int(row: &AnyRow, col: &str) -> anyhow::Result<Option<i64>> {
    row.try_get::<Option<i64>, _>(col)
        .with_context(|| format!("column {col}"))
}

/// `$start, $start+1, …` for `n` values: the placeholders of an `IN (…)` list.
pub(crate) fn placeholders(start: usize, n: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
