//! SQL for the catalog database, portable between SQLite and PostgreSQL.

pub mod products;
pub mod seed;
pub mod stock;

use bazaar_store::Migration;

/// The catalog schema, applied in order by [`bazaar_store::Db::open_for_service`].
pub static MIGRATIONS: &[Migration] = &[
    Migration::new(
        1,
        "products and secrets",
        include_str!("../migrations/0001_products.sql"),
    ),
    Migration::new(
        2,
        "stock levels replica",
        include_str!("../migrations/0002_stock_levels.sql"),
    ),
];

/// The table of the database's generated secrets (migration 1), where
/// [`bazaar_store::cursor::CursorKey::load_or_create`] keeps the cursor key.
pub const SECRETS_TABLE: &str = "catalog_secrets";

/// The catalog's migrations and those of the messaging tables (outbox, inbox, …).
pub fn all_migrations() -> Vec<Migration> {
    [MIGRATIONS, bazaar_messaging::MIGRATIONS].concat()
}

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another product has this SKU.
    #[error("a product with this SKU already exists")]
    DuplicateSku,
    /// The database failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
