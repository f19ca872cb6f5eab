//! Demo stock for the demo catalog, set in an empty database.

use anyhow::Context as _;
use bazaar_contracts::demo::{DEMO_STOCK, PRODUCTS};
use bazaar_store::Db;
use sqlx::Row;

use super::stock::{self, SetOutcome};
use crate::domain::{OnHand, Sku};

/// Sets [`DEMO_STOCK`] units on hand for every demo product if inventory has no stock
/// records at all; returns how many SKUs were stocked (0 when there were records already).
/// Each is a ledger adjustment with its `LevelChangedV1`, like an admin's stock count.
#[tracing::instrument(skip(db))]
pub async fn seed_demo(db: &Db, now_micros: i64) -> anyhow::Result<u64> {
    let on_hand = OnHand::new(DEMO_STOCK).context("the demo stock level is invalid")?;
    let mut tx = db.begin().await.context("begin demo seed")?;
    let existing: i64 = sqlx::query("SELECT COUNT(*) FROM stock")
        .fetch_one(&mut *tx)
        .await
        .context("count stock records")?
        .try_get(0)?;
    if existing > 0 {
        return Ok(0);
    }
    let mut stocked = 0;
    for product in PRODUCTS {
        let sku = Sku::parse(product.sku)
            .with_context(|| format!("demo SKU {} is invalid", product.sku))?;
        match stock::set_on_hand(&mut tx, &sku, on_hand, now_micros).await? {
            SetOutcome::Set(_) => stocked += 1,
            SetOutcome::BelowReserved(_) => {
                anyhow::bail!("demo SKU {sku} has reservations in an empty database")
            }
        }
    }
    tx.commit().await.context("commit demo seed")?;
    Ok(stocked)
}
