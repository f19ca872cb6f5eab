//! Stock levels: reading them, counting (setting `on_hand`), restocking and creating records.

use anyhow::Context as _;
use bazaar_store::{Db, Tx};
use sqlx::{any::AnyRow, Row};

use super::ledger;
use crate::{
    domain::{Levels, MovementKind, OnHand, Quantity, Sku},
    events,
};

/// What a stock count did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOutcome {
    /// `on_hand` was set; the new levels.
    Set(Levels),
    /// Refused: fewer units than are reserved. The transaction must be rolled back.
    BelowReserved(Levels),
}

/// What a restock did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestockOutcome {
    /// Units were added; the new levels.
    Restocked(Levels),
    /// Inventory has no record of the SKU.
    UnknownSku,
    /// The new level would pass [`OnHand::MAX`].
    TooMuch(Levels),
}

pub(crate) fn decode_levels(row: &AnyRow) -> Result<Levels, sqlx::Error> {
    Ok(Levels {
        on_hand: row.try_get(0)?,
        reserved: row.try_get(1)?,
    })
}

/// The levels of `sku`, if inventory has a record of it.
#[tracing::instrument(skip(db), fields(sku = %sku))]
pub async fn levels(db: &Db, sku: &Sku) -> anyhow::Result<Option<Levels>> {
    let row = sqlx::query("SELECT on_hand, reserved FROM stock WHERE sku = $1")
        .bind(sku.as_str())
        .fetch_optional(db.reader())
        .await
        .context("select stock levels")?;
    row.as_ref()
        .map(decode_levels)
        .transpose()
        .context("decode stock levels")
}

/// Creates a record with nothing on hand unless one exists; returns whether it created one
/// (and then publishes its levels).
#[tracing::instrument(skip(tx), fields(sku = %sku))]
pub async fn ensure(tx: &mut Tx, sku: &Sku, now_micros: i64) -> Result<bool, sqlx::Error> {
    let created = insert_empty(tx, sku, now_micros).await?;
    if created {
        events::level_changed(
            tx,
            sku,
            Levels {
                on_hand: 0,
                reserved: 0,
            },
        )
        .await?;
    }
    Ok(created)
}

async fn insert_empty(tx: &mut Tx, sku: &Sku, now_micros: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO stock (sku, on_hand, reserved, updated_us) VALUES ($1, 0, 0, $2) \
         ON CONFLICT (sku) DO NOTHING",
    )
    .bind(sku.as_str())
    .bind(now_micros)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Locks the stock row of `sku` for the rest of the transaction and returns its levels.
///
/// A no-op update is the portable `SELECT … FOR UPDATE`: on PostgreSQL it takes the row
/// lock (so the levels cannot change before the transaction ends); on SQLite the
/// transaction already is the only writer.
async fn lock(tx: &mut Tx, sku: &Sku, now_micros: i64) -> Result<Option<Levels>, sqlx::Error> {
    let row =
        sqlx::query("UPDATE stock SET updated_us = $2 WHERE sku = $1 RETURNING on_hand, reserved")
            .bind(sku.as_str())
            .bind(now_micros)
            .fetch_optional(&mut **tx)
            .await?;
    row.as_ref().map(decode_levels).transpose()
}

/// A stock count: sets `on_hand` of `sku` (creating the record if inventory has not heard of
/// the SKU), recorded in the ledger as an adjustment by the difference, and publishes the
/// new levels. Refused when fewer than the reserved units would remain.
#[tracing::instrument(skip(tx), fields(sku = %sku, on_hand = on_hand.get()))]
pub async fn set_on_hand(
    tx: &mut Tx,
    sku: &Sku,
    on_hand: OnHand,
    now_micros: i64,
) -> anyhow::Result<SetOutcome> {
    let created = insert_empty(tx, sku, now_micros)
        .await
        .context("create stock record")?;
    let before = lock(tx, sku, now_micros)
        .await
        .context("lock stock record")?
        .context("the stock record vanished inside its transaction")?;
    if on_hand.get() < before.reserved {
        return Ok(SetOutcome::BelowReserved(before));
    }
    let delta = on_hand.get() - before.on_hand;
    sqlx::query("UPDATE stock SET on_hand = $2 WHERE sku = $1")
        .bind(sku.as_str())
        .bind(on_hand.get())
        .execute(&mut **tx)
        .await
        .context("set on_hand")?;
    let after = Levels {
        on_hand: on_hand.get(),
        reserved: before.reserved,
    };
    // A count that confirms the level is still worth its ledger row: it says when the
    // warehouse was counted.
    ledger::record(tx, sku, MovementKind::Adjustment, delta, None, now_micros)
        .await
        .context("record adjustment")?;
    if created || delta != 0 {
        events::level_changed(tx, sku, after)
            .await
            .context("publish level change")?;
    }
    Ok(SetOutcome::Set(after))
}

/// Adds `quantity` units to the stock of a known SKU, recorded as an adjustment.
#[tracing::instrument(skip(tx), fields(sku = %sku, quantity = quantity.get()))]
pub async fn restock(
    tx: &mut Tx,
    sku: &Sku,
    quantity: Quantity,
    now_micros: i64,
) -> anyhow::Result<RestockOutcome> {
    let Some(before) = lock(tx, sku, now_micros)
        .await
        .context("lock stock record")?
    else {
        return Ok(RestockOutcome::UnknownSku);
    };
    if before.on_hand > OnHand::MAX - quantity.get() {
        return Ok(RestockOutcome::TooMuch(before));
    }
    let row = sqlx::query(
        "UPDATE stock SET on_hand = on_hand + $2 WHERE sku = $1 RETURNING on_hand, reserved",
    )
    .bind(sku.as_str())
    .bind(quantity.get())
    .fetch_one(&mut **tx)
    .await
    .context("add stock")?;
    let after = decode_levels(&row).context("decode stock levels")?;
    ledger::record(
        tx,
        sku,
        MovementKind::Adjustment,
        quantity.get(),
        None,
        now_micros,
    )
    .await
    .context("record restock")?;
    events::level_changed(tx, sku, after)
        .await
        .context("publish level change")?;
    Ok(RestockOutcome::Restocked(after))
}
