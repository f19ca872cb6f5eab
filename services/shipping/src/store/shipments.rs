//! Reading and writing shipments, and leasing the due ones to a worker.
//!
//! Every step of the worker is a conditional `UPDATE`: it names the lease it holds and the
//! statuses the move is allowed from (taken from [`ShipmentStatus::transition`]), so a worker
//! whose lease was taken over, or a repeated step, changes nothing and publishes nothing.

use anyhow::Context as _;
use bazaar_store::{Db, Tx};
use sqlx::{any::AnyRow, Row};
use uuid::Uuid;

use crate::domain::{Limit, OrderId, Shipment, ShipmentStatus};

const COLUMNS: &str = "order_id, id, user_id, status, postal_code, tracking_number, reason, \
                       last_error, traceparent, due_us, attempts, next_attempt_us, created_us, updated_us";

/// A shipment to create when an order is confirmed.
#[derive(Debug, Clone)]
pub struct NewShipment {
    /// The order.
    pub order_id: OrderId,
    /// Its owner.
    pub user_id: String,
    /// Its destination's postal code.
    pub postal_code: String,
    /// The trace context of the confirmation event.
    pub traceparent: Option<String>,
    /// Now (µs).
    pub now_us: i64,
    /// When the handling time is over (µs).
    pub due_us: i64,
}

/// Which shipments an admin list shows, and from where.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only shipments in this status.
    pub status: Option<ShipmentStatus>,
    /// Only shipments created before this one (the last of the previous page).
    pub after: Option<Uuid>,
    /// Page size.
    pub limit: Limit,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page {
    /// Newest first.
    pub items: Vec<Shipment>,
    /// Whether more shipments follow the last item.
    pub has_more: bool,
}

/// The SQL list of the statuses from which a move to `to` is legal.
fn from_statuses(to: ShipmentStatus) -> String {
    ShipmentStatus::ALL
        .into_iter()
        .filter(|s| s.transition(to).is_ok())
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The SQL list of the statuses a worker still acts on.
fn open_statuses() -> String {
    ShipmentStatus::ALL
        .into_iter()
        .filter(|s| s.is_open())
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Creates the `waiting` shipment of an order unless it exists; whether it was created.
/// Runs in the caller's transaction (the consumer's, which also records the event).
pub async fn insert_waiting(tx: &mut Tx, new: &NewShipment) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO shipments (order_id, id, user_id, status, postal_code, tracking_number, reason, \
         last_error, traceparent, due_us, attempts, next_attempt_us, lease_owner, lease_until_us, \
         created_us, updated_us) \
         VALUES ($1, $2, $3, $4, $5, NULL, NULL, NULL, $8, $6, 0, $6, NULL, NULL, $7, $7) \
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(new.order_id.as_str().to_owned())
    .bind(Uuid::now_v7().to_string())
    .bind(new.user_id.clone())
    .bind(ShipmentStatus::Waiting.as_str())
    .bind(new.postal_code.clone())
    .bind(new.due_us)
    .bind(new.now_us)
    .bind(new.traceparent.clone())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Leases up to `batch` open shipments that are due and not leased by anyone else to
/// `owner` until `lease_until_us`, counting a claim attempt for each; returns them.
///
/// Frees the leases held by earlier runs of this instance (their tokens start with
/// `<instance_id>/`), so the shipments it was working on when it crashed are due at once
/// rather than after the lease time. Writes check the exact lease token, so this is safe
/// even if a live instance shared the id.
pub async fn release_leases_of(db: &Db, instance_id: &str, now_us: i64) -> anyhow::Result<u64> {
    let prefix = format!("{instance_id}/");
    let done = sqlx::query(
        "UPDATE shipments SET lease_owner = NULL, lease_until_us = NULL, updated_us = $3 \
         WHERE lease_owner IS NOT NULL AND substr(lease_owner, 1, CAST($2 AS INTEGER)) = $1",
    )
    .bind(&prefix)
    .bind(i64::try_from(prefix.len()).unwrap_or(i64::MAX))
    .bind(now_us)
    .execute(db.writer())
    .await
    .context("release this instance's old leases")?;
    Ok(done.rows_affected())
}

/// One statement: the re-check of the conditions on the updated rows means two workers
/// running it at once never lease the same shipment (PostgreSQL re-evaluates them on the
/// newest row version after waiting for the other's row lock; SQLite has one writer).
#[tracing::instrument(skip(db))]
pub async fn lease_due(
    db: &Db,
    owner: &str,
    now_us: i64,
    lease_until_us: i64,
    batch: u16,
) -> anyhow::Result<Vec<Shipment>> {
    let open = open_statuses();
    let due = format!(
        "status IN ({open}) AND next_attempt_us <= $3 AND (lease_until_us IS NULL OR lease_until_us <= $3)"
    );
    let sql = format!(
        "UPDATE shipments SET lease_owner = $1, lease_until_us = $2, attempts = attempts + 1, updated_us = $3 \
         WHERE order_id IN (SELECT order_id FROM shipments WHERE {due} ORDER BY next_attempt_us LIMIT $4) \
         AND {due} RETURNING {COLUMNS}"
    );
    let mut tx = db.begin().await.context("begin lease shipments")?;
    let rows = sqlx::query(&sql)
        .bind(owner.to_owned())
        .bind(lease_until_us)
        .bind(now_us)
        .bind(i64::from(batch))
        .fetch_all(&mut *tx)
        .await
        .context("lease due shipments")?;
    tx.commit().await.context("commit lease shipments")?;
    rows.iter().map(decode).collect()
}

/// Records that the order granted the claim (`claimed`); false if `owner` lost the lease or
/// the shipment is no longer open.
#[tracing::instrument(skip(db), fields(order_id = %order_id))]
pub async fn mark_claimed(
    db: &Db,
    order_id: &OrderId,
    owner: &str,
    now_us: i64,
) -> anyhow::Result<bool> {
    let sql = format!(
        "UPDATE shipments SET status = $3, last_error = NULL, updated_us = $4 \
         WHERE order_id = $1 AND lease_owner = $2 AND status IN ({})",
        from_statuses(ShipmentStatus::Claimed)
    );
    let mut tx = db.begin().await.context("begin mark claimed")?;
    let done = sqlx::query(&sql)
        .bind(order_id.as_str().to_owned())
        .bind(owner.to_owned())
        .bind(ShipmentStatus::Claimed.as_str())
        .bind(now_us)
        .execute(&mut *tx)
        .await
        .context("mark shipment claimed")?;
    tx.commit().await.context("commit mark claimed")?;
    Ok(done.rows_affected() == 1)
}

/// Moves a leased shipment to a final status (`dispatched`, `failed`, `not_claimed`) and
/// releases the lease, in the caller's transaction (which publishes the matching event).
/// False, with nothing changed, if `owner` lost the lease or the move is not allowed.
pub async fn finish(
    tx: &mut Tx,
    order_id: &OrderId,
    owner: &str,
    to: ShipmentStatus,
    tracking_number: Option<&str>,
    reason: Option<&str>,
    now_us: i64,
) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "UPDATE shipments SET status = $3, tracking_number = $4, reason = $5, last_error = NULL, \
         lease_owner = NULL, lease_until_us = NULL, updated_us = $6 \
         WHERE order_id = $1 AND lease_owner = $2 AND status IN ({})",
        from_statuses(to)
    );
    let done = sqlx::query(&sql)
        .bind(order_id.as_str().to_owned())
        .bind(owner.to_owned())
        .bind(to.as_str())
        .bind(tracking_number.map(str::to_owned))
        .bind(reason.map(str::to_owned))
        .bind(now_us)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives a leased shipment back after a failed attempt, due again at `next_attempt_us`.
#[tracing::instrument(skip(db, error), fields(order_id = %order_id))]
pub async fn reschedule(
    db: &Db,
    order_id: &OrderId,
    owner: &str,
    next_attempt_us: i64,
    error: &str,
    now_us: i64,
) -> anyhow::Result<bool> {
    let sql = format!(
        "UPDATE shipments SET next_attempt_us = $3, last_error = $4, lease_owner = NULL, \
         lease_until_us = NULL, updated_us = $5 \
         WHERE order_id = $1 AND lease_owner = $2 AND status IN ({})",
        open_statuses()
    );
    // Errors come from other services: keep what operators need, not whole pages.
    let error: String = error.chars().take(500).collect();
    let mut tx = db.begin().await.context("begin reschedule")?;
    let done = sqlx::query(&sql)
        .bind(order_id.as_str().to_owned())
        .bind(owner.to_owned())
        .bind(next_attempt_us)
        .bind(error)
        .bind(now_us)
        .execute(&mut *tx)
        .await
        .context("reschedule shipment")?;
    tx.commit().await.context("commit reschedule")?;
    Ok(done.rows_affected() == 1)
}

/// The shipment of `order_id`, if any.
#[tracing::instrument(skip(db), fields(order_id = %order_id))]
pub async fn get(db: &Db, order_id: &OrderId) -> anyhow::Result<Option<Shipment>> {
    let sql = format!("SELECT {COLUMNS} FROM shipments WHERE order_id = $1");
    let row = sqlx::query(&sql)
        .bind(order_id.as_str().to_owned())
        .fetch_optional(db.reader())
        .await
        .context("select shipment")?;
    row.as_ref().map(decode).transpose()
}

/// One page of shipments, newest first.
#[tracing::instrument(skip(db))]
pub async fn list(db: &Db, query: &ListQuery) -> anyhow::Result<Page> {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<String> = Vec::new();
    if let Some(status) = query.status {
        args.push(status.as_str().to_owned());
        clauses.push(format!("status = ${}", args.len()));
    }
    if let Some(after) = query.after {
        args.push(after.to_string());
        clauses.push(format!("id < ${}", args.len()));
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM shipments{filter} ORDER BY id DESC LIMIT ${}",
        args.len() + 1
    );
    let mut q = sqlx::query(&sql);
    for arg in args {
        q = q.bind(arg);
    }
    // One more than asked for tells whether a next page exists.
    let rows = q
        .bind(i64::from(query.limit.get()) + 1)
        .fetch_all(db.reader())
        .await
        .context("list shipments")?;
    let limit = usize::from(query.limit.get());
    let has_more = rows.len() > limit;
    let items = rows
        .iter()
        .take(limit)
        .map(decode)
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Page { items, has_more })
}

fn decode(row: &AnyRow) -> anyhow::Result<Shipment> {
    let text = |col: &str| -> anyhow::Result<String> {
        row.try_get::<String, _>(col)
            .with_context(|| format!("column {col}"))
    };
    let opt = |col: &str| -> anyhow::Result<Option<String>> {
        row.try_get::<Option<String>, _>(col)
            .with_context(|| format!("column {col}"))
    };
    let int = |col: &str| -> anyhow::Result<i64> {
        row.try_get::<i64, _>(col)
            .with_context(|| format!("column {col}"))
    };
    let order_id = text("order_id")?;
    let bad =
        |what: &str| anyhow::anyhow!("stored shipment of order {order_id} has an invalid {what}");
    Ok(Shipment {
        id: Uuid::try_parse(&text("id")?).map_err(|_| bad("id"))?,
        order_id: OrderId::parse(&order_id).map_err(|_| bad("order id"))?,
        user_id: text("user_id")?,
        status: ShipmentStatus::parse(&text("status")?).map_err(|_| bad("status"))?,
        postal_code: text("postal_code")?,
        tracking_number: opt("tracking_number")?,
        reason: opt("reason")?,
        last_error: opt("last_error")?,
        traceparent: opt("traceparent")?,
        due_us: int("due_us")?,
        attempts: int("attempts")?,
        next_attempt_us: int("next_attempt_us")?,
        created_us: int("created_us")?,
        updated_us: int("updated_us")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_status_lists_follow_the_state_machine() {
        assert_eq!(
            from_statuses(ShipmentStatus::Claimed),
            "'waiting', 'claimed'"
        );
        assert_eq!(from_statuses(ShipmentStatus::Dispatched), "'claimed'");
        assert_eq!(
            from_statuses(ShipmentStatus::NotClaimed),
            "'waiting', 'claimed'"
        );
        assert_eq!(open_statuses(), "'waiting', 'claimed'");
    }
}
