//! Reserve, Release and Commit: the stock calls of the order saga and of the shipping
//! events, idempotent per order id.

use anyhow::Context as _;
use bazaar_contracts::events::{StockCommittedV1, StockLineV1, StockReleasedV1, StockReservedV1};
use bazaar_store::Tx;
use sqlx::{Acquire as _, Row};

use super::{ledger, stock::decode_levels};
use crate::{
    domain::{
        MovementKind, OrderId, Quantity, ReleaseReason, ReservationStatus, ReserveLines, Sku,
        Transition,
    },
    events,
};

/// The answer to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Where the order's reservation stands after the call; `None` when inventory has no
    /// record of the order (only a Commit can answer that).
    pub status: Option<ReservationStatus>,
    /// With [`ReservationStatus::OutOfStock`]: the SKUs that lacked stock.
    pub short_skus: Vec<String>,
    /// Whether this call changed anything (false for a repeated call).
    pub changed: bool,
}

impl Outcome {
    fn changed(status: ReservationStatus) -> Self {
        Outcome {
            status: Some(status),
            short_skus: Vec::new(),
            changed: true,
        }
    }

    fn unchanged(status: Option<ReservationStatus>) -> Self {
        Outcome {
            status,
            short_skus: Vec::new(),
            changed: false,
        }
    }
}

/// Locks the reservation row of `order` for the rest of the transaction and returns its
/// status (see `stock::lock` for why a no-op update).
async fn lock_status(tx: &mut Tx, order: &OrderId) -> anyhow::Result<Option<ReservationStatus>> {
    let row =
        sqlx::query("UPDATE reservations SET status = status WHERE order_id = $1 RETURNING status")
            .bind(order.as_str())
            .fetch_optional(&mut **tx)
            .await
            .context("lock reservation")?;
    row.map(|r| {
        let s: String = r.try_get(0)?;
        ReservationStatus::parse(&s).with_context(|| format!("unknown reservation status {s:?}"))
    })
    .transpose()
}

async fn set_status(
    tx: &mut Tx,
    order: &OrderId,
    status: ReservationStatus,
    reason: Option<&ReleaseReason>,
    now_micros: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE reservations SET status = $2, reason = COALESCE($3, reason), updated_us = $4 \
         WHERE order_id = $1",
    )
    .bind(order.as_str())
    .bind(status.as_str())
    .bind(reason.map(|r| r.as_str().to_owned()))
    .bind(now_micros)
    .execute(&mut **tx)
    .await
    .context("update reservation status")?;
    Ok(())
}

/// The lines `order` holds (not the short lines of a refused reservation), in SKU order.
async fn held_lines(tx: &mut Tx, order: &OrderId) -> anyhow::Result<Vec<(Sku, Quantity)>> {
    let rows = sqlx::query(
        "SELECT sku, quantity FROM reservation_lines WHERE order_id = $1 AND short = 0 \
         ORDER BY sku",
    )
    .bind(order.as_str())
    .fetch_all(&mut **tx)
    .await
    .context("select reservation lines")?;
    rows.iter()
        .map(|r| {
            let sku: String = r.try_get(0)?;
            let quantity: i64 = r.try_get(1)?;
            Ok((
                Sku::parse(&sku).with_context(|| format!("stored SKU {sku:?} is invalid"))?,
                Quantity::new(quantity)
                    .with_context(|| format!("stored quantity {quantity} is invalid"))?,
            ))
        })
        .collect()
}

async fn short_skus(tx: &mut Tx, order: &OrderId) -> anyhow::Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT sku FROM reservation_lines WHERE order_id = $1 AND short = 1 ORDER BY sku",
    )
    .bind(order.as_str())
    .fetch_all(&mut **tx)
    .await
    .context("select short lines")?;
    rows.iter()
        .map(|r| r.try_get(0).context("decode short SKU"))
        .collect()
}

async fn insert_line(
    tx: &mut Tx,
    order: &OrderId,
    sku: &Sku,
    quantity: Quantity,
    short: bool,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO reservation_lines (order_id, sku, quantity, short) VALUES ($1, $2, $3, $4)",
    )
    .bind(order.as_str())
    .bind(sku.as_str())
    .bind(quantity.get())
    .bind(i64::from(short))
    .execute(&mut **tx)
    .await
    .context("insert reservation line")?;
    Ok(())
}

fn stock_lines<'a>(lines: impl IntoIterator<Item = (&'a Sku, Quantity)>) -> Vec<StockLineV1> {
    lines
        .into_iter()
        .map(|(sku, q)| StockLineV1 {
            sku: sku.as_str().to_owned(),
            quantity: q.get(),
        })
        .collect()
}

/// Holds stock for every line of `order`, all or nothing.
///
/// The first Reserve of an order decides: `Reserved` (stock held, a reserve movement and a
/// `LevelChangedV1` per SKU plus one `StockReservedV1`), or `OutOfStock` with the SKUs that
/// lacked stock (nothing held; unknown SKUs count as out of stock). That outcome is recorded,
/// and every later Reserve of the order answers with the order's current status (also when
/// the lines differ), so a retried call never holds stock twice, and a Reserve that arrives
/// after a Release of the order answers `Released` and holds nothing.
#[tracing::instrument(skip(tx, lines), fields(order_id = %order, lines = lines.len()))]
pub async fn reserve(
    tx: &mut Tx,
    order: &OrderId,
    lines: &ReserveLines,
    now_micros: i64,
) -> anyhow::Result<Outcome> {
    // Claim the order id first: a concurrent call for the same order waits here (PostgreSQL)
    // or is serialised (SQLite), then finds the record and answers with it.
    let claimed = sqlx::query(
        "INSERT INTO reservations (order_id, status, reason, created_us, updated_us) \
         VALUES ($1, $2, '', $3, $3) ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order.as_str())
    .bind(ReservationStatus::Reserved.as_str())
    .bind(now_micros)
    .execute(&mut **tx)
    .await
    .context("claim reservation")?
    .rows_affected()
        == 1;
    if !claimed {
        let status = lock_status(tx, order)
            .await?
            .context("the reservation vanished inside its transaction")?;
        let short_skus = if status == ReservationStatus::OutOfStock {
            short_skus(tx, order).await?
        } else {
            Vec::new()
        };
        return Ok(Outcome {
            status: Some(status),
            short_skus,
            changed: false,
        });
    }

    // Take every line under a savepoint; if one is short, undo them all. Lines come in SKU
    // order, which is the lock order.
    let mut savepoint = tx.begin().await.context("begin savepoint")?;
    let mut levels = Vec::with_capacity(lines.len());
    let mut short = Vec::new();
    for (sku, quantity) in lines.iter() {
        let row = sqlx::query(
            "UPDATE stock SET reserved = reserved + $2, updated_us = $3 \
             WHERE sku = $1 AND on_hand - reserved >= $2 RETURNING on_hand, reserved",
        )
        .bind(sku.as_str())
        .bind(quantity.get())
        .bind(now_micros)
        .fetch_optional(&mut *savepoint)
        .await
        .context("reserve stock")?;
        match row {
            Some(row) => levels.push((sku, decode_levels(&row).context("decode levels")?)),
            None => short.push(sku),
        }
    }
    if !short.is_empty() {
        savepoint
            .rollback()
            .await
            .context("roll back to savepoint")?;
        set_status(tx, order, ReservationStatus::OutOfStock, None, now_micros).await?;
        for (sku, quantity) in lines.iter() {
            insert_line(tx, order, sku, quantity, short.contains(&sku)).await?;
        }
        return Ok(Outcome {
            status: Some(ReservationStatus::OutOfStock),
            short_skus: short.iter().map(|s| s.as_str().to_owned()).collect(),
            changed: true,
        });
    }
    savepoint.commit().await.context("release savepoint")?;
    for (sku, quantity) in lines.iter() {
        insert_line(tx, order, sku, quantity, false).await?;
        ledger::record(
            tx,
            sku,
            MovementKind::Reserve,
            quantity.get(),
            Some(order.as_str()),
            now_micros,
        )
        .await
        .context("record reserve movement")?;
    }
    for (sku, after) in levels {
        events::level_changed(tx, sku, after)
            .await
            .context("publish level change")?;
    }
    events::publish(
        tx,
        &StockReservedV1 {
            order_id: order.as_str().to_owned(),
            lines: stock_lines(lines.iter()),
        },
    )
    .await
    .context("publish reserved")?;
    Ok(Outcome::changed(ReservationStatus::Reserved))
}

/// Gives back what `order` holds.
///
/// A held reservation becomes `Released` (a release movement and a `LevelChangedV1` per SKU,
/// plus one `StockReleasedV1`). An order inventory has not heard of gets a `Released`
/// tombstone (and a `StockReleasedV1` without lines), so a Reserve that arrives late holds
/// nothing. A refused (`OutOfStock`) reservation becomes `Released` without moving stock.
/// `Released` and `Committed` orders answer with their status and change nothing.
#[tracing::instrument(skip(tx), fields(order_id = %order, reason = reason.as_str()))]
pub async fn release(
    tx: &mut Tx,
    order: &OrderId,
    reason: &ReleaseReason,
    now_micros: i64,
) -> anyhow::Result<Outcome> {
    let tombstone = sqlx::query(
        "INSERT INTO reservations (order_id, status, reason, created_us, updated_us) \
         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order.as_str())
    .bind(ReservationStatus::Released.as_str())
    .bind(reason.as_str())
    .bind(now_micros)
    .execute(&mut **tx)
    .await
    .context("insert release tombstone")?
    .rows_affected()
        == 1;
    let current = if tombstone {
        None
    } else {
        Some(
            lock_status(tx, order)
                .await?
                .context("the reservation vanished inside its transaction")?,
        )
    };
    let given_back = match current {
        None => Vec::new(),
        Some(status) => match status.release() {
            Transition::Stay => return Ok(Outcome::unchanged(Some(status))),
            Transition::To(next) => {
                set_status(tx, order, next, Some(reason), now_micros).await?;
                if status.holds_stock() {
                    give_back(tx, order, now_micros).await?
                } else {
                    Vec::new()
                }
            }
        },
    };
    events::publish(
        tx,
        &StockReleasedV1 {
            order_id: order.as_str().to_owned(),
            lines: stock_lines(given_back.iter().map(|(s, q)| (s, *q))),
            reason: reason.as_str().to_owned(),
        },
    )
    .await
    .context("publish released")?;
    Ok(Outcome::changed(ReservationStatus::Released))
}

/// Lowers `reserved` by each held line of `order`.
async fn give_back(
    tx: &mut Tx,
    order: &OrderId,
    now_micros: i64,
) -> anyhow::Result<Vec<(Sku, Quantity)>> {
    let lines = held_lines(tx, order).await?;
    for (sku, quantity) in &lines {
        let row = sqlx::query(
            "UPDATE stock SET reserved = reserved - $2, updated_us = $3 \
             WHERE sku = $1 AND reserved >= $2 RETURNING on_hand, reserved",
        )
        .bind(sku.as_str())
        .bind(quantity.get())
        .bind(now_micros)
        .fetch_optional(&mut **tx)
        .await
        .context("release stock")?
        .with_context(|| format!("{sku} holds less than order {order} reserved"))?;
        let after = decode_levels(&row).context("decode levels")?;
        ledger::record(
            tx,
            sku,
            MovementKind::Release,
            -quantity.get(),
            Some(order.as_str()),
            now_micros,
        )
        .await
        .context("record release movement")?;
        events::level_changed(tx, sku, after)
            .await
            .context("publish level change")?;
    }
    Ok(lines)
}

/// Takes a held reservation's units out of the warehouse (the order was dispatched):
/// `on_hand` and `reserved` both drop by each line, a commit movement and a `LevelChangedV1`
/// per SKU, plus one `StockCommittedV1`. Any other status answers unchanged (`None` when
/// inventory has no record of the order).
#[tracing::instrument(skip(tx), fields(order_id = %order))]
pub async fn commit(tx: &mut Tx, order: &OrderId, now_micros: i64) -> anyhow::Result<Outcome> {
    let Some(status) = lock_status(tx, order).await? else {
        return Ok(Outcome::unchanged(None));
    };
    let next = match status.commit() {
        Transition::Stay => return Ok(Outcome::unchanged(Some(status))),
        Transition::To(next) => next,
    };
    set_status(tx, order, next, None, now_micros).await?;
    let lines = held_lines(tx, order).await?;
    for (sku, quantity) in &lines {
        let row = sqlx::query(
            "UPDATE stock SET on_hand = on_hand - $2, reserved = reserved - $2, updated_us = $3 \
             WHERE sku = $1 AND reserved >= $2 RETURNING on_hand, reserved",
        )
        .bind(sku.as_str())
        .bind(quantity.get())
        .bind(now_micros)
        .fetch_optional(&mut **tx)
        .await
        .context("commit stock")?
        .with_context(|| format!("{sku} holds less than order {order} reserved"))?;
        let after = decode_levels(&row).context("decode levels")?;
        ledger::record(
            tx,
            sku,
            MovementKind::Commit,
            -quantity.get(),
            Some(order.as_str()),
            now_micros,
        )
        .await
        .context("record commit movement")?;
        events::level_changed(tx, sku, after)
            .await
            .context("publish level change")?;
    }
    events::publish(
        tx,
        &StockCommittedV1 {
            order_id: order.as_str().to_owned(),
            lines: stock_lines(lines.iter().map(|(s, q)| (s, *q))),
        },
    )
    .await
    .context("publish committed")?;
    Ok(Outcome::changed(next))
}
