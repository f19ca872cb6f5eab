//! Refunds asked for by events and performed later by the refund worker.

use anyhow::Context as _;
use bazaar_store::{Db, Tx};
use sqlx::Row;

use crate::domain::OrderId;

/// An open refund request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// The order whose payment to refund.
    pub order_id: OrderId,
    /// Why (carried by the `payment.refunded` event).
    pub reason: String,
    /// Attempts made so far.
    pub attempts: i64,
}

/// Records a refund request for `order_id` inside the consumer's transaction; an order that
/// already has one gets nothing new (returns `false`).
pub async fn request(
    tx: &mut Tx,
    order_id: &OrderId,
    reason: &str,
    event_id: &str,
    now_us: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO payment_refund_requests \
         (order_id, reason, event_id, requested_us, attempts, next_attempt_us, done_us, outcome, last_error) \
         VALUES ($1, $2, $3, $4, 0, $4, NULL, NULL, NULL) ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id.as_str().to_owned())
    .bind(reason.to_owned())
    .bind(event_id.to_owned())
    .bind(now_us)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Open requests whose next attempt is due at `now_us`, oldest first.
#[tracing::instrument(skip(db))]
pub async fn due(db: &Db, now_us: i64, limit: i64) -> anyhow::Result<Vec<RefundRequest>> {
    let rows = sqlx::query(
        "SELECT order_id, reason, attempts FROM payment_refund_requests \
         WHERE done_us IS NULL AND next_attempt_us <= $1 ORDER BY next_attempt_us, order_id LIMIT $2",
    )
    .bind(now_us)
    .bind(limit)
    .fetch_all(db.reader())
    .await
    .context("select due refund requests")?;
    rows.iter()
        .map(|row| {
            let id: String = row.try_get("order_id").context("column order_id")?;
            Ok(RefundRequest {
                order_id: OrderId::parse(&id)
                    .with_context(|| format!("refund request has an invalid order id {id:?}"))?,
                reason: row.try_get("reason").context("column reason")?,
                attempts: row.try_get("attempts").context("column attempts")?,
            })
        })
        .collect()
}

/// When the earliest open request is due, if any is open.
pub async fn next_due(db: &Db) -> anyhow::Result<Option<i64>> {
    sqlx::query_scalar::<_, i64>(
        "SELECT next_attempt_us FROM payment_refund_requests WHERE done_us IS NULL \
         ORDER BY next_attempt_us LIMIT 1",
    )
    .fetch_optional(db.reader())
    .await
    .context("select the next due refund request")
}

/// Closes the request of `order_id` with the payment's final status.
#[tracing::instrument(skip(db), fields(order_id = %order_id))]
pub async fn finish(
    db: &Db,
    order_id: &OrderId,
    attempts: i64,
    outcome: &str,
    now_us: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE payment_refund_requests SET done_us = $2, attempts = $3, outcome = $4, last_error = NULL \
         WHERE order_id = $1",
    )
    .bind(order_id.as_str().to_owned())
    .bind(now_us)
    .bind(attempts)
    .bind(outcome.to_owned())
    .execute(db.writer())
    .await
    .context("finish refund request")?;
    Ok(())
}

/// Schedules another attempt of the request of `order_id` at `next_attempt_us`.
#[tracing::instrument(skip(db), fields(order_id = %order_id))]
pub async fn retry_later(
    db: &Db,
    order_id: &OrderId,
    attempts: i64,
    next_attempt_us: i64,
    error: &str,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE payment_refund_requests SET attempts = $2, next_attempt_us = $3, last_error = $4 \
         WHERE order_id = $1",
    )
    .bind(order_id.as_str().to_owned())
    .bind(attempts)
    .bind(next_attempt_us)
    .bind(error.to_owned())
    .execute(db.writer())
    .await
    .context("reschedule refund request")?;
    Ok(())
}
