//! SQL for the processor's database, portable between SQLite and PostgreSQL.

pub mod charges;
pub mod refunds;

use bazaar_store::Migration;

/// The processor's schema, applied in order by [`bazaar_store::Db::open_for_service`].
pub static MIGRATIONS: &[Migration] = &[Migration::new(
    1,
    "charges and refunds",
    include_str!("../migrations/0001_charges.sql"),
)];

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The idempotency key is taken by an operation with other parameters, or the operation
    /// does not fit the charge's state.
    #[error("{0}")]
    Conflict(&'static str),
    /// The charge to refund does not exist.
    #[error("no such charge")]
    NotFound,
    /// The database failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Counts of what the processor has done (for tests and operators).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Every charge recorded.
    pub charges: i64,
    /// Of which captured.
    pub captured: i64,
    /// Of which declined.
    pub declined: i64,
    /// Every refund recorded.
    pub refunds: i64,
}

/// The current [`Stats`].
#[tracing::instrument(skip(db))]
pub async fn stats(db: &bazaar_store::Db) -> anyhow::Result<Stats> {
    use anyhow::Context as _;
    let count = |sql: &'static str, arg: Option<&'static str>| async move {
        let mut q = sqlx::query_scalar::<_, i64>(sql);
        if let Some(a) = arg {
            q = q.bind(a);
        }
        q.fetch_one(db.reader()).await.context("count")
    };
    Ok(Stats {
        charges: count("SELECT COUNT(*) FROM psp_charges", None).await?,
        captured: count(
            "SELECT COUNT(*) FROM psp_charges WHERE status = $1",
            Some("captured"),
        )
        .await?,
        declined: count(
            "SELECT COUNT(*) FROM psp_charges WHERE status = $1",
            Some("declined"),
        )
        .await?,
        refunds: count("SELECT COUNT(*) FROM psp_refunds", None).await?,
    })
}
