//! Orders and their history.

use anyhow::Context as _;
use bazaar_store::{Db, Tx};
use sqlx::{any::AnyRow, Row};

use super::{int, opt_text, text};
use crate::domain::{
    Address, HistoryEntry, Money, Order, OrderLine, OrderStatus, PaymentStatus, ShipmentStatus,
    StatusReason, Step,
};

const COLUMNS: &str = "id, user_id, status, status_reason, items, total_minor, currency, \
    shipping_address, card_token, payment_status, shipment_status, tracking_number, \
    cancel_requested, shipment_claimed, created_us, updated_us";

/// Inserts a new order (status `pending`) and its first history entry.
pub async fn insert(tx: &mut Tx, order: &Order) -> anyhow::Result<()> {
    let items = serde_json::to_string(&order.items).context("encode items")?;
    let address = serde_json::to_string(&order.shipping_address).context("encode address")?;
    let sql = format!(
        "INSERT INTO orders ({COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    );
    sqlx::query(&sql)
        .bind(&order.id)
        .bind(&order.user_id)
        .bind(order.status.as_str())
        .bind(order.status_reason.map(StatusReason::as_str))
        .bind(items)
        .bind(order.total.amount_minor)
        .bind(&order.total.currency)
        .bind(address)
        .bind(&order.card_token)
        .bind(order.payment_status.as_str())
        .bind(order.shipment_status.as_str())
        .bind(order.tracking_number.as_deref())
        .bind(i64::from(order.cancel_requested))
        .bind(i64::from(order.shipment_claimed))
        .bind(order.created_us)
        .bind(order.updated_us)
        .execute(&mut **tx)
        .await
        .context("insert order")?;
    add_history(
        tx,
        &order.id,
        order.status,
        order.status_reason,
        order.created_us,
    )
    .await
}

/// Appends a history entry (the caller has just updated the order row, which serialises
/// concurrent writers of one order, so the next sequence number is free).
async fn add_history(
    tx: &mut Tx,
    order_id: &str,
    status: OrderStatus,
    reason: Option<StatusReason>,
    at_us: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO order_history (order_id, seq, status, reason, at_us) \
         VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM order_history WHERE order_id = $1), $2, $3, $4)",
    )
    .bind(order_id)
    .bind(status.as_str())
    .bind(reason.map(StatusReason::as_str))
    .bind(at_us)
    .execute(&mut **tx)
    .await
    .context("insert order history")?;
    Ok(())
}

/// The order with `id` and its history, if any.
#[tracing::instrument(skip(db))]
pub async fn get(db: &Db, id: &str) -> anyhow::Result<Option<Order>> {
    let sql = format!("SELECT {COLUMNS} FROM orders WHERE id = $1");
    let Some(row) = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(db.reader())
        .await
        .context("select order")?
    else {
        return Ok(None);
    };
    let mut order = decode(&row)?;
    let rows = sqlx::query(
        "SELECT status, reason, at_us FROM order_history WHERE order_id = $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(db.reader())
    .await
    .context("select order history")?;
    for r in rows {
        let status = text(&r, "status")?;
        order.history.push(HistoryEntry {
            status: OrderStatus::parse(&status)
                .with_context(|| format!("order {id} has a history status {status:?}"))?,
            reason: opt_text(&r, "reason")?
                .as_deref()
                .and_then(StatusReason::parse),
            at_us: int(&r, "at_us")?,
        });
    }
    Ok(Some(order))
}

/// The order's status, if the order exists.
pub async fn status(db: &Db, id: &str) -> anyhow::Result<Option<OrderStatus>> {
    let row = sqlx::query("SELECT status FROM orders WHERE id = $1")
        .bind(id)
        .fetch_optional(db.reader())
        .await
        .context("select order status")?;
    match row {
        None => Ok(None),
        Some(r) => {
            let s = text(&r, "status")?;
            Ok(Some(
                OrderStatus::parse(&s).with_context(|| format!("order {id} has status {s:?}"))?,
            ))
        }
    }
}

fn decode(row: &AnyRow) -> anyhow::Result<Order> {
    let id = text(row, "id")?;
    let bad = |what: &str| anyhow::anyhow!("stored order {id} has an invalid {what}");
    let items: Vec<OrderLine> =
        serde_json::from_str(&text(row, "items")?).map_err(|_| bad("items"))?;
    let shipping_address: Address =
        serde_json::from_str(&text(row, "shipping_address")?).map_err(|_| bad("address"))?;
    Ok(Order {
        user_id: text(row, "user_id")?,
        status: OrderStatus::parse(&text(row, "status")?).ok_or_else(|| bad("status"))?,
        status_reason: match opt_text(row, "status_reason")? {
            None => None,
            Some(r) => Some(StatusReason::parse(&r).ok_or_else(|| bad("status reason"))?),
        },
        items,
        total: Money {
            amount_minor: int(row, "total_minor")?,
            currency: text(row, "currency")?,
        },
        shipping_address,
        card_token: text(row, "card_token")?,
        payment_status: PaymentStatus::parse(&text(row, "payment_status")?)
            .ok_or_else(|| bad("payment status"))?,
        shipment_status: ShipmentStatus::parse(&text(row, "shipment_status")?)
            .ok_or_else(|| bad("shipment status"))?,
        tracking_number: opt_text(row, "tracking_number")?,
        cancel_requested: int(row, "cancel_requested")? != 0,
        shipment_claimed: int(row, "shipment_claimed")? != 0,
        history: Vec::new(),
        created_us: int(row, "created_us")?,
        updated_us: int(row, "updated_us")?,
        id,
    })
}

/// Extra conditions of a status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Only the current status is checked.
    None,
    /// Also refused once a cancel was requested (the forward moves of the saga).
    NotCancelling,
}

/// Moves the order to `to` (with `reason`) if its current status may precede `to` (and the
/// guard holds), appending the history entry. Returns whether the order moved.
pub async fn transition(
    tx: &mut Tx,
    id: &str,
    to: OrderStatus,
    reason: Option<StatusReason>,
    guard: Guard,
    now: i64,
) -> anyhow::Result<bool> {
    let sources = OrderStatus::sources(to);
    if sources.is_empty() {
        return Ok(false);
    }
    let list = sources
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let extra = match guard {
        Guard::None => "",
        Guard::NotCancelling => " AND cancel_requested = 0",
    };
    let sql = format!(
        "UPDATE orders SET status = $2, status_reason = $3, updated_us = $4 \
         WHERE id = $1 AND status IN ({list}){extra}"
    );
    let done = sqlx::query(&sql)
        .bind(id)
        .bind(to.as_str())
        .bind(reason.map(StatusReason::as_str))
        .bind(now)
        .execute(&mut **tx)
        .await
        .context("update order status")?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    add_history(tx, id, to, reason, now).await?;
    Ok(true)
}

/// Raises the order's payment status to `to` unless it is already as far along (a late
/// `captured` never hides a `refunded`). Returns whether it changed.
pub async fn raise_payment_status(
    tx: &mut Tx,
    id: &str,
    to: PaymentStatus,
    now: i64,
) -> anyhow::Result<bool> {
    let sql = format!(
        "UPDATE orders SET payment_status = $2, updated_us = $3 WHERE id = $1 AND {} < $4",
        PaymentStatus::rank_sql("payment_status")
    );
    let done = sqlx::query(&sql)
        .bind(id)
        .bind(to.as_str())
        .bind(now)
        .bind(to.rank())
        .execute(&mut **tx)
        .await
        .context("update payment status")?;
    Ok(done.rows_affected() == 1)
}

/// Sets the payment status to `to` if it is `from` (e.g. `pending` → `none` when the
/// compensation learns nothing was ever captured).
pub async fn replace_payment_status(
    tx: &mut Tx,
    id: &str,
    from: PaymentStatus,
    to: PaymentStatus,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE orders SET payment_status = $3, updated_us = $4 WHERE id = $1 AND payment_status = $2",
    )
    .bind(id)
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await
    .context("replace payment status")?;
    Ok(())
}

/// What a customer's cancel decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The cancel was accepted now; the saga compensates.
    Accepted,
    /// A cancel had been accepted before (a repeated request).
    AlreadyRequested,
    /// Too late (claimed for shipment, or final) or the order is being aborted.
    Conflict,
    /// No such order for this user.
    NotFound,
}

/// A customer's cancel, decided by one conditional update: allowed while the order is
/// `pending`, `payment_pending` or `confirmed` and shipping has not claimed it. Accepting
/// it hands the saga to the compensation in the same transaction.
#[tracing::instrument(skip(db))]
pub async fn request_cancel(
    db: &Db,
    id: &str,
    user_id: &str,
    now: i64,
) -> anyhow::Result<CancelOutcome> {
    let mut tx = db.begin().await.context("begin cancel")?;
    let done = sqlx::query(
        "UPDATE orders SET cancel_requested = 1, updated_us = $3 \
         WHERE id = $1 AND user_id = $2 AND shipment_claimed = 0 AND cancel_requested = 0 \
         AND status IN ('pending', 'payment_pending', 'confirmed')",
    )
    .bind(id)
    .bind(user_id)
    .bind(now)
    .execute(&mut *tx)
    .await
    .context("request cancel")?;
    if done.rows_affected() == 1 {
        super::sagas::start_compensation(&mut tx, id, Step::Compensate, now).await?;
        super::sagas::log(
            &mut tx,
            id,
            Step::Compensate,
            "cancel_requested",
            Some("the customer cancelled"),
            now,
        )
        .await?;
        tx.commit().await.context("commit cancel")?;
        return Ok(CancelOutcome::Accepted);
    }
    let row = sqlx::query(
        "SELECT o.user_id, o.cancel_requested, s.step FROM orders o \
         LEFT JOIN sagas s ON s.order_id = o.id WHERE o.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .context("select order for cancel")?;
    tx.commit().await.context("end cancel")?;
    let Some(row) = row else {
        return Ok(CancelOutcome::NotFound);
    };
    if text(&row, "user_id")? != user_id {
        return Ok(CancelOutcome::NotFound);
    }
    if int(&row, "cancel_requested")? == 0 {
        return Ok(CancelOutcome::Conflict);
    }
    // A cancel was accepted before: the same answer again, unless it was an operator's
    // abort, which ends the order `rejected` rather than `cancelled`.
    match opt_text(&row, "step")?.as_deref().and_then(Step::parse) {
        Some(Step::Abort) => Ok(CancelOutcome::Conflict),
        _ => Ok(CancelOutcome::AlreadyRequested),
    }
}

/// What a shipment claim decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// Whether shipping may dispatch, and the order's status.
    Decided {
        /// Granted (now or before).
        claimed: bool,
        /// The order's status.
        status: OrderStatus,
    },
    /// No such order.
    NotFound,
}

/// Shipping's claim, decided by one conditional update: granted while the order is
/// `confirmed` and no cancel was requested; a granted claim is granted again.
#[tracing::instrument(skip(db))]
pub async fn claim_for_shipment(db: &Db, id: &str, now: i64) -> anyhow::Result<ClaimOutcome> {
    let mut tx = db.begin().await.context("begin claim")?;
    let done = sqlx::query(
        "UPDATE orders SET shipment_claimed = 1, updated_us = $2 \
         WHERE id = $1 AND status = 'confirmed' AND cancel_requested = 0 AND shipment_claimed = 0",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *tx)
    .await
    .context("claim order")?;
    let row = sqlx::query("SELECT status, shipment_claimed FROM orders WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .context("select claimed order")?;
    tx.commit().await.context("commit claim")?;
    let Some(row) = row else {
        return Ok(ClaimOutcome::NotFound);
    };
    let status = text(&row, "status")?;
    let status =
        OrderStatus::parse(&status).with_context(|| format!("order {id} has status {status:?}"))?;
    Ok(ClaimOutcome::Decided {
        claimed: done.rows_affected() == 1 || int(&row, "shipment_claimed")? == 1,
        status,
    })
}

/// A confirmed order left the warehouse: `shipped`, with its tracking number. Returns the
/// owner if the order moved (it must have been `confirmed`).
pub async fn mark_shipped(
    tx: &mut Tx,
    id: &str,
    tracking_number: &str,
    now: i64,
) -> anyhow::Result<Option<String>> {
    if !transition(tx, id, OrderStatus::Shipped, None, Guard::None, now).await? {
        return Ok(None);
    }
    let row = sqlx::query(
        "UPDATE orders SET shipment_status = 'dispatched', tracking_number = $2 WHERE id = $1 \
         RETURNING user_id",
    )
    .bind(id)
    .bind(tracking_number)
    .fetch_one(&mut **tx)
    .await
    .context("record dispatch")?;
    Ok(Some(text(&row, "user_id")?))
}

/// The carrier refused a confirmed order: `cancelled(shipment_failed)`. Returns the owner if
/// the order moved (it must have been `confirmed`).
pub async fn mark_shipment_failed(
    tx: &mut Tx,
    id: &str,
    now: i64,
) -> anyhow::Result<Option<String>> {
    let moved = sqlx::query(
        "UPDATE orders SET status = 'cancelled', status_reason = 'shipment_failed', \
         shipment_status = 'failed', updated_us = $2 WHERE id = $1 AND status = 'confirmed' \
         RETURNING user_id",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await
    .context("record shipment failure")?;
    let Some(row) = moved else {
        return Ok(None);
    };
    add_history(
        tx,
        id,
        OrderStatus::Cancelled,
        Some(StatusReason::ShipmentFailed),
        now,
    )
    .await?;
    Ok(Some(text(&row, "user_id")?))
}

/// The owner of the order, if it exists (inside a transaction).
pub async fn owner(tx: &mut Tx, id: &str) -> anyhow::Result<Option<String>> {
    let row = sqlx::query("SELECT user_id FROM orders WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .context("select order owner")?;
    row.map(|r| text(&r, "user_id")).transpose()
}

/// Whether a row's `cancel_requested` is set (inside a transaction).
pub async fn cancel_requested(tx: &mut Tx, id: &str) -> anyhow::Result<bool> {
    let row = sqlx::query("SELECT cancel_requested FROM orders WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .context("select cancel flag")?;
    Ok(row
        .map(|r| r.try_get::<i64, _>(0))
        .transpose()?
        .unwrap_or(0)
        != 0)
}
