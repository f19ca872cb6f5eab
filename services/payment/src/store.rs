//! SQL for the payment database, portable between SQLite and PostgreSQL.

pub mod payments;
pub mod refund_requests;

use bazaar_store::Migration;

/// The payment schema (the messaging tables come from [`migrations`]).
pub static MIGRATIONS: &[Migration] = &[Migration::new(
    1,
    "payments and refund requests",
    include_str!("../migrations/0001_payments.sql"),
)];

/// Every migration the payment database needs: its own and the messaging tables (outbox,
/// inbox, dead letters, cursors).
pub fn migrations() -> Vec<Migration> {
    [MIGRATIONS, bazaar_messaging::MIGRATIONS].concat()
}
