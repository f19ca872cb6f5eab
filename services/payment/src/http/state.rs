//! `GET /admin/state`: every payment and refund request, for consistency checks after a
//! chaos run (the `bazaar check` command reads it).

use axum::extract::State;
use bazaar_messaging::{read_rows, MessagingSummary};
use bazaar_runtime::{AdminUser, Json, Problem};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::AdminState;
use crate::SERVICE;

/// The answer of the payment service's `GET /admin/state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentState {
    /// `"payment"`.
    pub service: String,
    /// The event bus's tables.
    pub messaging: MessagingSummary,
    /// Every payment, by order id.
    pub payments: Vec<PaymentRecord>,
    /// Every refund request (from `shipping.failed`), by order id.
    pub refund_requests: Vec<RefundRequestRecord>,
}

/// One payment as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    /// The order.
    pub order_id: String,
    /// `pending`, `captured`, `declined` or `refunded`.
    pub status: String,
    /// What the order asked to charge.
    pub amount_minor: i64,
    /// In what currency.
    pub currency: String,
    /// The processor's test card token.
    pub card_token: String,
    /// The idempotency key the processor knows the charge by (`order-<order_id>`).
    pub psp_charge_key: String,
    /// The processor's id of the charge, once known.
    pub psp_charge_id: Option<String>,
    /// What the processor captured.
    pub captured_minor: i64,
    /// What has been refunded.
    pub refunded_minor: i64,
    /// How many times the charge was sent to the processor.
    pub attempts: i64,
}

/// One refund request as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequestRecord {
    /// The order whose payment to refund.
    pub order_id: String,
    /// Why.
    pub reason: String,
    /// Whether the refund worker has finished it.
    pub done: bool,
    /// The payment's status when the worker finished it.
    pub outcome: Option<String>,
    /// Attempts made.
    pub attempts: i64,
}

/// `GET /admin/state` (admin): the whole payment state, read in one snapshot.
pub(super) async fn state(
    State(state): State<AdminState>,
    AdminUser(_): AdminUser,
) -> Result<Json<PaymentState>, Problem> {
    read(&state)
        .await
        .map(Json)
        .map_err(|e| Problem::internal(&e))
}

async fn read(state: &AdminState) -> Result<PaymentState, sqlx::Error> {
    let mut tx = bazaar_messaging::read_snapshot(&state.db).await?;
    let messaging = state.bus.state_summary(&mut tx).await?;
    let payments = read_rows(
        &mut tx,
        "SELECT order_id, status, amount_minor, currency, card_token, psp_charge_key, \
         psp_charge_id, captured_minor, refunded_minor, attempts FROM payments ORDER BY order_id",
        |r| {
            Ok(PaymentRecord {
                order_id: r.try_get(0)?,
                status: r.try_get(1)?,
                amount_minor: r.try_get(2)?,
                currency: r.try_get(3)?,
                card_token: r.try_get(4)?,
                psp_charge_key: r.try_get(5)?,
                psp_charge_id: r.try_get(6)?,
                captured_minor: r.try_get(7)?,
                refunded_minor: r.try_get(8)?,
                attempts: r.try_get(9)?,
            })
        },
    )
    .await?;
    let refund_requests = read_rows(
        &mut tx,
        "SELECT order_id, reason, done_us, outcome, attempts FROM payment_refund_requests \
         ORDER BY order_id",
        |r| {
            Ok(RefundRequestRecord {
                order_id: r.try_get(0)?,
                reason: r.try_get(1)?,
                done: r.try_get::<Option<i64>, _>(2)?.is_some(),
                outcome: r.try_get(3)?,
                attempts: r.try_get(4)?,
            })
        },
    )
    .await?;
    tx.rollback().await?;
    Ok(PaymentState {
        service: SERVICE.to_owned(),
        messaging,
        payments,
        refund_requests,
    })
}
