//! The order-history read model: one summary row per order, projected from events.
//!
//! Every write is idempotent and order-insensitive: a row is created by whichever event
//! about the order arrives first, facts only fill in (the owner, the total) and statuses
//! only move up their rank, so replays, duplicates and events from different producers
//! arriving in any order converge on the same row.

use anyhow::Context as _;
use bazaar_store::{Db, Tx};
use sqlx::any::AnyRow;

use super::{int, opt_text, text};
use crate::domain::{OrderStatus, PaymentStatus, ShipmentStatus, StatusReason};

/// One order as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewRow {
    /// The order.
    pub order_id: String,
    /// Its status.
    pub status: String,
    /// Why it was rejected or cancelled.
    pub status_reason: Option<String>,
    /// Its total.
    pub total_minor: i64,
    /// The total's currency.
    pub currency: String,
    /// Units over all lines.
    pub item_count: i64,
    /// The payment's status.
    pub payment_status: String,
    /// The shipment's status.
    pub shipment_status: String,
    /// Placed (from the time-ordered order id).
    pub created_us: i64,
    /// The time of the newest event applied.
    pub updated_us: i64,
}

/// The placement time encoded in a UUIDv7 order id (millisecond precision, which is also the
/// precision of an order's stored `created_us`).
pub fn created_us_of(order_id: &str) -> i64 {
    uuid::Uuid::try_parse(order_id)
        .ok()
        .and_then(|u| u.get_timestamp())
        .map(|t| {
            let (secs, nanos) = t.to_unix();
            i64::try_from(secs)
                .unwrap_or(0)
                .saturating_mul(1_000_000)
                .saturating_add(i64::from(nanos / 1_000))
        })
        .unwrap_or(0)
}

/// Creates the row of `order_id` if missing and fills in its owner if known.
async fn ensure(
    tx: &mut Tx,
    order_id: &str,
    user_id: Option<&str>,
    event_us: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO order_views (order_id, user_id, status, status_reason, status_rank, total_minor, \
         currency, item_count, payment_status, shipment_status, created_us, updated_us) \
         VALUES ($1, $2, 'pending', NULL, 0, 0, '', 0, 'none', 'none', $3, $4) \
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id)
    .bind(user_id.unwrap_or_default())
    .bind(created_us_of(order_id))
    .bind(event_us)
    .execute(&mut **tx)
    .await
    .context("insert order view")?;
    if let Some(user_id) = user_id {
        sqlx::query("UPDATE order_views SET user_id = $2 WHERE order_id = $1 AND user_id = ''")
            .bind(order_id)
            .bind(user_id)
            .execute(&mut **tx)
            .await
            .context("fill order view owner")?;
    }
    Ok(())
}

async fn touch(tx: &mut Tx, order_id: &str, event_us: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE order_views SET updated_us = $2 WHERE order_id = $1 AND updated_us < $2")
        .bind(order_id)
        .bind(event_us)
        .execute(&mut **tx)
        .await
        .context("touch order view")?;
    Ok(())
}

/// The facts of a placed (or confirmed) order: owner, total, units.
pub async fn apply_facts(
    tx: &mut Tx,
    order_id: &str,
    user_id: &str,
    total_minor: i64,
    currency: &str,
    item_count: i64,
    event_us: i64,
) -> anyhow::Result<()> {
    ensure(tx, order_id, Some(user_id), event_us).await?;
    sqlx::query(
        "UPDATE order_views SET total_minor = $2, currency = $3, item_count = $4 \
         WHERE order_id = $1 AND currency = ''",
    )
    .bind(order_id)
    .bind(total_minor)
    .bind(currency)
    .bind(item_count)
    .execute(&mut **tx)
    .await
    .context("fill order view facts")?;
    touch(tx, order_id, event_us).await
}

/// A status event: applied only if it is further along than what the row shows.
pub async fn apply_status(
    tx: &mut Tx,
    order_id: &str,
    user_id: Option<&str>,
    status: OrderStatus,
    reason: Option<StatusReason>,
    event_us: i64,
) -> anyhow::Result<()> {
    ensure(tx, order_id, user_id, event_us).await?;
    sqlx::query(
        "UPDATE order_views SET status = $2, status_reason = $3, status_rank = $4 \
         WHERE order_id = $1 AND status_rank < $4",
    )
    .bind(order_id)
    .bind(status.as_str())
    .bind(reason.map(StatusReason::as_str))
    .bind(status.rank())
    .execute(&mut **tx)
    .await
    .context("update order view status")?;
    touch(tx, order_id, event_us).await
}

/// A payment event: raises the payment status along its rank.
pub async fn apply_payment(
    tx: &mut Tx,
    order_id: &str,
    status: PaymentStatus,
    event_us: i64,
) -> anyhow::Result<()> {
    ensure(tx, order_id, None, event_us).await?;
    let sql = format!(
        "UPDATE order_views SET payment_status = $2 WHERE order_id = $1 AND {} < $3",
        PaymentStatus::rank_sql("payment_status")
    );
    sqlx::query(&sql)
        .bind(order_id)
        .bind(status.as_str())
        .bind(status.rank())
        .execute(&mut **tx)
        .await
        .context("update order view payment")?;
    touch(tx, order_id, event_us).await
}

/// A shipping event: the shipment status, once.
pub async fn apply_shipment(
    tx: &mut Tx,
    order_id: &str,
    user_id: &str,
    status: ShipmentStatus,
    event_us: i64,
) -> anyhow::Result<()> {
    ensure(tx, order_id, Some(user_id), event_us).await?;
    sqlx::query(
        "UPDATE order_views SET shipment_status = $2 WHERE order_id = $1 AND shipment_status = 'none'",
    )
    .bind(order_id)
    .bind(status.as_str())
    .execute(&mut **tx)
    .await
    .context("update order view shipment")?;
    touch(tx, order_id, event_us).await
}

fn decode(r: &AnyRow) -> anyhow::Result<ViewRow> {
    Ok(ViewRow {
        order_id: text(r, "order_id")?,
        status: text(r, "status")?,
        status_reason: opt_text(r, "status_reason")?,
        total_minor: int(r, "total_minor")?,
        currency: text(r, "currency")?,
        item_count: int(r, "item_count")?,
        payment_status: text(r, "payment_status")?,
        shipment_status: text(r, "shipment_status")?,
        created_us: int(r, "created_us")?,
        updated_us: int(r, "updated_us")?,
    })
}

/// One page of `user_id`'s orders, newest first, after the order `after`.
pub async fn list(
    db: &Db,
    user_id: &str,
    after: Option<&str>,
    limit: u8,
) -> anyhow::Result<(Vec<ViewRow>, bool)> {
    let cols = "order_id, status, status_reason, total_minor, currency, item_count, \
                payment_status, shipment_status, created_us, updated_us";
    let rows = match after {
        None => {
            sqlx::query(&format!(
                "SELECT {cols} FROM order_views WHERE user_id = $1 ORDER BY order_id DESC LIMIT $2"
            ))
            .bind(user_id)
            .bind(i64::from(limit) + 1)
            .fetch_all(db.reader())
            .await
        }
        Some(after) => {
            sqlx::query(&format!(
                "SELECT {cols} FROM order_views WHERE user_id = $1 AND order_id < $2 \
             ORDER BY order_id DESC LIMIT $3"
            ))
            .bind(user_id)
            .bind(after)
            .bind(i64::from(limit) + 1)
            .fetch_all(db.reader())
            .await
        }
    }
    .context("list order views")?;
    let has_more = rows.len() > usize::from(limit);
    let items = rows
        .iter()
        .take(usize::from(limit))
        .map(decode)
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((items, has_more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_creation_time_comes_from_the_v7_id() {
        let id = uuid::Uuid::now_v7().to_string();
        let us = created_us_of(&id);
        let now = bazaar_runtime::time::now_micros();
        assert!(us <= now && us > now - 10_000_000, "{us} vs {now}");
        assert_eq!(us % 1000, 0);
        assert_eq!(created_us_of("nope"), 0);
    }
}
