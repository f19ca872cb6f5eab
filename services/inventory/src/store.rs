//! SQL for the inventory database, portable between SQLite and PostgreSQL.
//!
//! Every write takes the caller's [`bazaar_store::Tx`] and publishes its events into the
//! outbox of that same transaction, so the gRPC handlers, the event consumers (which run
//! inside the consumer's transaction) and the admin API share one code path, and an event
//! exists exactly when its change committed.
//!
//! # Never oversold
//! A reservation takes stock with a guarded update,
//! `UPDATE stock SET reserved = reserved + q WHERE sku = s AND on_hand - reserved >= q`,
//! and checks that it touched a row: the check and the change are one statement, so no
//! interleaving of concurrent calls can push `reserved` past `on_hand` (on PostgreSQL the
//! second writer waits for the row lock and re-evaluates the condition; on SQLite writers are
//! serialised). The database's `CHECK (reserved <= on_hand)` is the last line of defence.
//!
//! # No deadlocks
//! Every transaction locks at most one reservation row first, then stock rows in SKU order.

pub mod ledger;
pub mod reservations;
pub mod seed;
pub mod stock;

use bazaar_store::Migration;

/// The inventory schema, applied in order by [`bazaar_store::Db::open_for_service`]
/// (together with `bazaar_messaging::MIGRATIONS`).
pub static MIGRATIONS: &[Migration] = &[Migration::new(
    1,
    "stock, reservations and the movement ledger",
    include_str!("../migrations/0001_stock.sql"),
)];
