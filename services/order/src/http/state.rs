//! `GET /admin/state`: every order with its lines and saga, and every idempotency key, for
//! consistency checks after a chaos run (the `bazaar check` command reads it).

use axum::extract::State;
use bazaar_messaging::{read_rows, MessagingSummary};
use bazaar_runtime::{AdminUser, Json, Problem};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::state::AppState;

/// The answer of the order service's `GET /admin/state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderState {
    /// `"order"`.
    pub service: String,
    /// The event bus's tables.
    pub messaging: MessagingSummary,
    /// Every order, by id (creation order).
    pub orders: Vec<OrderRecord>,
    /// Every idempotency key of `POST /api/v1/orders`, by user and key.
    pub idempotency_keys: Vec<IdempotencyKeyRecord>,
}

/// One order as stored (the write model, not the order-history read model).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// The order id.
    pub id: String,
    /// Its owner.
    pub user_id: String,
    /// `pending`, `payment_pending`, `confirmed`, `rejected`, `cancelled` or `shipped`.
    pub status: String,
    /// Why it is rejected or cancelled.
    pub status_reason: Option<String>,
    /// What it costs, in minor units.
    pub total_minor: i64,
    /// In what currency.
    pub currency: String,
    /// What the order knows of its payment: `none`, `pending`, `captured`, `declined` or
    /// `refunded`.
    pub payment_status: String,
    /// What the order knows of its shipment: `none`, `dispatched` or `failed`.
    pub shipment_status: String,
    /// A customer's cancel (or an operator's abort) was accepted: shipping may not claim it.
    pub cancel_requested: bool,
    /// Shipping claimed it: it can no longer be cancelled.
    pub shipment_claimed: bool,
    /// Its lines.
    pub items: Vec<OrderItemRecord>,
    /// Its saga; `null` if it has none.
    pub saga: Option<SagaRecord>,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItemRecord {
    /// The catalog product id.
    pub product_id: String,
    /// Its SKU (inventory holds stock by SKU).
    pub sku: String,
    /// Units ordered.
    pub quantity: i64,
}

/// Where an order's saga stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SagaRecord {
    /// The step to run next (or the last one run).
    pub step: String,
    /// `running`, `done`, `stuck` or `aborted`.
    pub status: String,
    /// Attempts of the current step.
    pub attempts: i64,
    /// The last failure.
    pub last_error: Option<String>,
}

/// One idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyKeyRecord {
    /// The user who sent it.
    pub user_id: String,
    /// The key.
    pub key: String,
    /// The order it placed; `null` while its first request runs (or if that one crashed).
    pub order_id: Option<String>,
}

/// The fields of a stored order line the state shows (the rest is ignored).
#[derive(Deserialize)]
struct StoredLine {
    product_id: String,
    sku: String,
    quantity: i64,
}

/// `GET /admin/state` (admin): every order, saga and idempotency key and the bus's tables,
/// read in one snapshot.
pub(super) async fn state(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
) -> Result<Json<OrderState>, Problem> {
    read(&state)
        .await
        .map(Json)
        .map_err(|e| Problem::internal(&e))
}

async fn read(state: &AppState) -> Result<OrderState, sqlx::Error> {
    let mut tx = bazaar_messaging::read_snapshot(state.db()).await?;
    let messaging = state.bus().state_summary(&mut tx).await?;
    let orders = read_rows(
        &mut tx,
        "SELECT o.id, o.user_id, o.status, o.status_reason, o.total_minor, o.currency, \
         o.payment_status, o.shipment_status, o.cancel_requested, o.shipment_claimed, o.items, \
         s.step, s.status, s.attempts, s.last_error \
         FROM orders o LEFT JOIN sagas s ON s.order_id = o.id ORDER BY o.id",
        |r| {
            let id: String = r.try_get(0)?;
            let items: String = r.try_get(10)?;
            let items: Vec<StoredLine> =
                serde_json::from_str(&items).map_err(|e| sqlx::Error::ColumnDecode {
                    index: "items".to_owned(),
                    source: Box::new(e),
                })?;
            let saga = match r.try_get::<Option<String>, _>(11)? {
                None => None,
                Some(step) => Some(SagaRecord {
                    step,
                    status: r.try_get(12)?,
                    attempts: r.try_get(13)?,
                    last_error: r.try_get(14)?,
                }),
            };
            Ok(OrderRecord {
                id,
                user_id: r.try_get(1)?,
                status: r.try_get(2)?,
                status_reason: r.try_get(3)?,
                total_minor: r.try_get(4)?,
                currency: r.try_get(5)?,
                payment_status: r.try_get(6)?,
                shipment_status: r.try_get(7)?,
                cancel_requested: r.try_get::<i64, _>(8)? != 0,
                shipment_claimed: r.try_get::<i64, _>(9)? != 0,
                items: items
                    .into_iter()
                    .map(|l| OrderItemRecord {
                        product_id: l.product_id,
                        sku: l.sku,
                        quantity: l.quantity,
                    })
                    .collect(),
                saga,
            })
        },
    )
    .await?;
    let idempotency_keys = read_rows(
        &mut tx,
        "SELECT user_id, key, order_id FROM idempotency_keys ORDER BY user_id, key",
        |r| {
            Ok(IdempotencyKeyRecord {
                user_id: r.try_get(0)?,
                key: r.try_get(1)?,
                order_id: r.try_get(2)?,
            })
        },
    )
    .await?;
    tx.rollback().await?;
    Ok(OrderState {
        service: crate::SERVICE.to_owned(),
        messaging,
        orders,
        idempotency_keys,
    })
}
