//! The replicated stock levels: written by the `level_changed` consumer, read for `in_stock`.

use bazaar_store::Tx;
use sqlx::Row;

/// Records `available` units for `sku` as of `event_time` (µs), unless a newer level is
/// stored already (an old event delivered late changes nothing).
pub async fn apply_level(
    tx: &mut Tx,
    sku: &str,
    available: i64,
    event_time: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO stock_levels (sku, available, event_time) VALUES ($1, $2, $3) \
         ON CONFLICT (sku) DO UPDATE SET available = excluded.available, event_time = excluded.event_time \
         WHERE stock_levels.event_time <= excluded.event_time",
    )
    .bind(sku)
    .bind(available)
    .bind(event_time)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Whether the replica shows available stock for `sku`.
pub async fn in_stock(tx: &mut Tx, sku: &str) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT available FROM stock_levels WHERE sku = $1")
        .bind(sku)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match row {
        Some(r) => r.try_get::<i64, _>(0)? > 0,
        None => false,
    })
}
