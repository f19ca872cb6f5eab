//! Reading and writing payments. Every change of status is one conditional `UPDATE … WHERE
//! status = <the status the transition starts from>`, so two racing writers can never both
//! move a payment (the loser sees no row and re-reads the winner's outcome).

use anyhow::Context as _;
use bazaar_store::{Db, Tx};
use sqlx::{any::AnyRow, Row};

use crate::domain::{ChargeCommand, OrderId, PaymentEvent, PaymentStatus};

const COLUMNS: &str = "order_id, status, amount_minor, currency, card_token, psp_charge_key, \
                       psp_charge_id, captured_minor, refunded_minor, attempts, decline_reason, \
                       refund_reason, created_us, updated_us";

/// A stored payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The order it is for.
    pub order_id: OrderId,
    /// Where it is (never [`PaymentStatus::None`]: that is the absence of a row).
    pub status: PaymentStatus,
    /// What the order asked to charge.
    pub amount_minor: i64,
    /// In what currency.
    pub currency: String,
    /// The processor's test card token.
    pub card_token: String,
    /// The idempotency key the processor knows the charge by.
    pub psp_charge_key: String,
    /// The processor's id of the charge, once known.
    pub psp_charge_id: Option<String>,
    /// What the processor captured.
    pub captured_minor: i64,
    /// What has been refunded.
    pub refunded_minor: i64,
    /// How many times the charge was sent to the processor.
    pub attempts: i64,
    /// The processor's decline code.
    pub decline_reason: Option<String>,
    /// Why the payment was refunded.
    pub refund_reason: Option<String>,
    /// When it was first attempted (µs since the epoch).
    pub created_us: i64,
    /// When it last changed.
    pub updated_us: i64,
}

/// How the processor settled a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Captured `amount_minor`.
    Captured {
        /// What was captured.
        amount_minor: i64,
        /// The processor's charge id.
        charge_id: String,
    },
    /// Declined with a reason code.
    Declined {
        /// The processor's code, e.g. `card_declined`.
        reason: String,
        /// The processor's charge id, if it made one.
        charge_id: Option<String>,
    },
}

impl Settlement {
    /// The transition this settlement makes.
    pub fn event(&self) -> PaymentEvent {
        match self {
            Settlement::Captured { .. } => PaymentEvent::Captured,
            Settlement::Declined { .. } => PaymentEvent::Declined,
        }
    }
}

/// The payment of `order_id`, if any.
#[tracing::instrument(skip(db), fields(order_id = %order_id))]
pub async fn get(db: &Db, order_id: &OrderId) -> anyhow::Result<Option<Payment>> {
    let sql = format!("SELECT {COLUMNS} FROM payments WHERE order_id = $1");
    let row = sqlx::query(&sql)
        .bind(order_id.as_str().to_owned())
        .fetch_optional(db.reader())
        .await
        .context("select payment")?;
    row.as_ref().map(decode).transpose()
}

/// Records one more attempt to charge for `cmd`'s order: creates the payment as pending
/// (first attempt) or counts another attempt of a pending one. Returns the payment
/// afterwards; if it was settled meanwhile, the settled payment, unchanged. The amount,
/// currency and card of an existing payment are kept.
#[tracing::instrument(skip(db, cmd), fields(order_id = %cmd.order_id))]
pub async fn begin_attempt(db: &Db, cmd: &ChargeCommand, now_us: i64) -> anyhow::Result<Payment> {
    let pending = PaymentEvent::Attempted.target().as_str();
    // One statement: inserting the first attempt and counting a later one cannot race.
    let sql = format!(
        "INSERT INTO payments ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, NULL, 0, 0, 1, NULL, NULL, $7, $7) \
         ON CONFLICT (order_id) DO UPDATE SET attempts = payments.attempts + 1, \
         updated_us = excluded.updated_us WHERE payments.status = $2 \
         RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(cmd.order_id.as_str().to_owned())
        .bind(pending)
        .bind(cmd.amount_minor)
        .bind(cmd.currency.clone())
        .bind(cmd.card_token.clone())
        .bind(cmd.order_id.charge_key())
        .bind(now_us)
        .fetch_optional(db.writer())
        .await
        .context("record a charge attempt")?;
    match row {
        Some(row) => decode(&row),
        None => get(db, &cmd.order_id)
            .await?
            .context("a payment refused an attempt but is gone"),
    }
}

/// Settles the pending payment of `order_id`; `None` if it is not pending (settled by
/// someone else, whose outcome the caller should re-read).
#[tracing::instrument(skip(tx, settlement), fields(order_id = %order_id))]
pub async fn settle(
    tx: &mut Tx,
    order_id: &OrderId,
    settlement: &Settlement,
    now_us: i64,
) -> anyhow::Result<Option<Payment>> {
    let event = settlement.event();
    let (captured, reason, charge_id) = match settlement {
        Settlement::Captured {
            amount_minor,
            charge_id,
        } => (*amount_minor, None, Some(charge_id.clone())),
        Settlement::Declined { reason, charge_id } => (0, Some(reason.clone()), charge_id.clone()),
    };
    let sql = format!(
        "UPDATE payments SET status = $2, captured_minor = $3, decline_reason = $4, \
         psp_charge_id = COALESCE($5, psp_charge_id), updated_us = $6 \
         WHERE order_id = $1 AND status = $7 RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(order_id.as_str().to_owned())
        .bind(event.target().as_str())
        .bind(captured)
        .bind(reason)
        .bind(charge_id)
        .bind(now_us)
        .bind(PaymentStatus::Pending.as_str())
        .fetch_optional(&mut **tx)
        .await
        .context("settle payment")?;
    row.as_ref().map(decode).transpose()
}

/// Marks the captured payment of `order_id` as refunded; `None` if it is not captured.
#[tracing::instrument(skip(tx), fields(order_id = %order_id))]
pub async fn record_refund(
    tx: &mut Tx,
    order_id: &OrderId,
    refunded_minor: i64,
    reason: &str,
    now_us: i64,
) -> anyhow::Result<Option<Payment>> {
    let sql = format!(
        "UPDATE payments SET status = $2, refunded_minor = $3, refund_reason = $4, updated_us = $5 \
         WHERE order_id = $1 AND status = $6 RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(order_id.as_str().to_owned())
        .bind(PaymentEvent::Refunded.target().as_str())
        .bind(refunded_minor)
        .bind(reason.to_owned())
        .bind(now_us)
        .bind(PaymentStatus::Captured.as_str())
        .fetch_optional(&mut **tx)
        .await
        .context("record refund")?;
    row.as_ref().map(decode).transpose()
}

/// One page of payments in order-id order, after `after`; and whether more follow.
#[tracing::instrument(skip(db))]
pub async fn list(
    db: &Db,
    after: Option<&OrderId>,
    limit: u16,
) -> anyhow::Result<(Vec<Payment>, bool)> {
    let (filter, arg) = match after {
        Some(a) => (" WHERE order_id > $2", Some(a.as_str().to_owned())),
        None => ("", None),
    };
    let sql = format!("SELECT {COLUMNS} FROM payments{filter} ORDER BY order_id LIMIT $1");
    // One more than asked for tells whether a next page exists.
    let mut q = sqlx::query(&sql).bind(i64::from(limit) + 1);
    if let Some(a) = arg {
        q = q.bind(a);
    }
    let rows = q.fetch_all(db.reader()).await.context("list payments")?;
    let has_more = rows.len() > usize::from(limit);
    let items = rows
        .iter()
        .take(usize::from(limit))
        .map(decode)
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((items, has_more))
}

fn decode(row: &AnyRow) -> anyhow::Result<Payment> {
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
    let status = text("status")?;
    Ok(Payment {
        order_id: OrderId::parse(&order_id)
            .with_context(|| format!("stored payment has an invalid order id {order_id:?}"))?,
        status: PaymentStatus::parse(&status)
            .filter(|s| *s != PaymentStatus::None)
            .with_context(|| format!("payment {order_id} has an unknown status {status:?}"))?,
        amount_minor: int("amount_minor")?,
        currency: text("currency")?,
        card_token: text("card_token")?,
        psp_charge_key: text("psp_charge_key")?,
        psp_charge_id: opt("psp_charge_id")?,
        captured_minor: int("captured_minor")?,
        refunded_minor: int("refunded_minor")?,
        attempts: int("attempts")?,
        decline_reason: opt("decline_reason")?,
        refund_reason: opt("refund_reason")?,
        created_us: int("created_us")?,
        updated_us: int("updated_us")?,
    })
}
