//! SQL for the catalog database, portable between SQLite and PostgreSQL.

pub mod products;
pub mod secrets;
pub mod seed;

use bazaar_store::Migration;

/// The catalog schema, applied in order by [`bazaar_store::Db::open_for_service`].
pub static MIGRATIONS: &[Migration] = &[Migration::new(
    1,
    "products and secrets",
    include_str!("../migrations/0001_products.sql"),
)];

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
