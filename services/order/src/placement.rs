//! Placing an order: idempotency, pricing, and the one transaction that creates the order,
//! its saga and its `order.placed` event.

use std::{collections::HashMap, time::Duration};

use anyhow::Context as _;
use bazaar_contracts::events::OrderPlacedV1;
use bazaar_proto::grpc::problem_from_status;
use bazaar_runtime::{context, failpoint, time::now_micros, Problem, ProblemKind};
use serde_json::Value;

use crate::{
    domain::{
        request_hash, CatalogPrice, IdempotencyKey, Money, Order, OrderStatus, PaymentStatus,
        PlaceOrder, ShipmentStatus,
    },
    saga::count_outcome,
    state::AppState,
    store::{
        idempotency::{self, Begin},
        orders, prices, sagas,
        views::created_us_of,
    },
};

/// How long an in-flight idempotency key blocks a repeat before the repeat takes it over (the
/// first request must have crashed: placement takes a few seconds at most).
pub const TAKEOVER_AFTER: Duration = Duration::from_secs(60);

/// A placement's answer.
#[derive(Debug)]
pub struct Placed {
    /// The order (new, or the one the key created before).
    pub order: Order,
    /// Whether this was a repeat of an earlier request.
    pub replayed: bool,
}

/// Places an order for `user_id` with the parsed JSON `body`, or answers a repeat of an
/// earlier request with the same key.
pub async fn place(
    state: &AppState,
    user_id: &str,
    key: &IdempotencyKey,
    body: &Value,
) -> Result<Placed, Problem> {
    let command = PlaceOrder::parse(body).map_err(Problem::validation)?;
    let hash = request_hash(body);
    let takeover_us = i64::try_from(TAKEOVER_AFTER.as_micros()).unwrap_or(i64::MAX);
    let begin = idempotency::begin(
        state.db(),
        user_id,
        key.as_str(),
        &hash,
        now_micros(),
        takeover_us,
    )
    .await?;
    match begin {
        Begin::Reused => Err(Problem::new(
            ProblemKind::IdempotencyKeyReused,
            "This Idempotency-Key was used with a different request body.",
        )),
        Begin::InFlight => Err(in_flight()),
        Begin::Replay { order_id } => replay(state, &order_id).await,
        Begin::Fresh { claim_us } => {
            match create(state, user_id, key, claim_us, command).await {
                Ok(placed) => Ok(placed),
                Err(problem) => {
                    // A refused request does not use up its key (only if it still holds it:
                    // once an order is attached the key is never given back).
                    if let Err(e) =
                        idempotency::forget(state.db(), user_id, key.as_str(), claim_us).await
                    {
                        tracing::warn!(error = %format!("{e:#}"), "Could not give back an idempotency key.");
                    }
                    Err(problem)
                }
            }
        }
    }
}

fn in_flight() -> Problem {
    Problem::new(
        ProblemKind::IdempotencyKeyInFlight,
        "A request with this Idempotency-Key is still being processed; retry shortly.",
    )
    .with_retry_after(1)
}

async fn replay(state: &AppState, order_id: &str) -> Result<Placed, Problem> {
    let order = orders::get(state.db(), order_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("idempotency key points at a missing order {order_id}"))?;
    Ok(Placed {
        order,
        replayed: true,
    })
}

async fn create(
    state: &AppState,
    user_id: &str,
    key: &IdempotencyKey,
    claim_us: i64,
    command: PlaceOrder,
) -> Result<Placed, Problem> {
    let known = price_lines(state, &command).await?;
    let (items, total) = command.price(&known).map_err(Problem::validation)?;

    let id = uuid::Uuid::now_v7().to_string();
    // The stored creation time is the id's own (millisecond) timestamp, so the read model,
    // which only sees the id, shows the same time.
    let created_us = created_us_of(&id);
    let order = Order {
        id: id.clone(),
        user_id: user_id.to_owned(),
        status: OrderStatus::Pending,
        status_reason: None,
        items,
        total,
        shipping_address: command.address,
        card_token: command.card_token,
        payment_status: PaymentStatus::None,
        shipment_status: ShipmentStatus::None,
        tracking_number: None,
        cancel_requested: false,
        shipment_claimed: false,
        history: Vec::new(),
        created_us,
        updated_us: created_us,
    };

    let db = state.db();
    let mut tx = db.begin().await.context("begin placement")?;
    if !idempotency::attach(&mut tx, user_id, key.as_str(), claim_us, &id).await? {
        // Another request took the key over (ours was thought crashed): answer with what it
        // made of it, if anything yet.
        tx.rollback().await.context("roll back placement")?;
        return match idempotency::order_of(db, user_id, key.as_str()).await? {
            Some(order_id) => replay(state, &order_id).await,
            None => Err(in_flight()),
        };
    }
    orders::insert(&mut tx, &order).await?;
    let traceparent = context::with_current(context::RequestContext::traceparent);
    sagas::insert(&mut tx, &id, traceparent.as_deref(), now_micros()).await?;
    bazaar_messaging::publish(
        &mut tx,
        &OrderPlacedV1 {
            order_id: id.clone(),
            user_id: user_id.to_owned(),
            items: order.event_lines(),
            total: order.event_total(),
        },
    )
    .await
    .context("publish order placed")?;
    tx.commit().await.context("commit placement")?;
    state.bus().notify();
    state.wake_sagas();
    count_outcome("placed");
    tracing::info!(order_id = %id, total_minor = order.total.amount_minor, "Order placed.");

    failpoint::hit_async("order.place.after_commit")
        .await
        .map_err(|e| Problem::internal(&e))?;
    let order = orders::get(db, &id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("order {id} vanished after its commit"))?;
    Ok(Placed {
        order,
        replayed: false,
    })
}

/// The price of every product of the command: from the replica of the catalog's events,
/// asking the catalog for the ones it has not heard of yet (a product is orderable as soon
/// as its create call returned, before its event arrives here).
async fn price_lines(
    state: &AppState,
    command: &PlaceOrder,
) -> Result<HashMap<String, CatalogPrice>, Problem> {
    let ids = command.product_ids();
    let mut known = prices::get_many(state.db(), &ids).await?;
    let missing: Vec<String> = ids
        .into_iter()
        .filter(|id| !known.contains_key(id))
        .collect();
    if missing.is_empty() {
        return Ok(known);
    }
    let fetched = state
        .clients()
        .get_products(missing.clone())
        .await
        .map_err(|s| {
            tracing::warn!(status = %crate::clients::describe(&s), "The catalog could not price an order.");
            problem_from_status(&s)
        })?;
    let mut fresh = Vec::new();
    for p in fetched {
        let Ok(id) = uuid::Uuid::try_parse(&p.id) else {
            continue;
        };
        let id = id.hyphenated().to_string();
        let valid = missing.contains(&id)
            && p.price_minor >= 0
            && p.currency.len() == 3
            && p.currency.bytes().all(|b| b.is_ascii_uppercase())
            && !p.sku.is_empty();
        if !valid {
            continue;
        }
        let price = CatalogPrice {
            sku: p.sku,
            name: p.name,
            price: Money {
                amount_minor: p.price_minor,
                currency: p.currency,
            },
        };
        fresh.push((id.clone(), price.clone()));
        known.insert(id, price);
    }
    if let Err(e) = prices::insert_fetched(state.db(), &fresh).await {
        // The replica is a cache of the catalog: failing to fill it only costs another call.
        tracing::debug!(error = %format!("{e:#}"), "Could not store fetched prices.");
    }
    Ok(known)
}
