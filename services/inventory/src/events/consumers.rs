//! Inventory's consumers. Each handler runs inside the consumer's transaction (which also
//! records the event in the inbox) and calls the same store functions as the gRPC service,
//! so a redelivered or replayed event changes nothing twice.

use anyhow::Context as _;
use bazaar_contracts::{
    events::{ProductCreatedV1, ShipmentDispatchedV1, ShipmentFailedV1},
    EventPayload,
};
use bazaar_messaging::{Bus, Envelope, Handler, HandlerError, Subscription};
use bazaar_runtime::{failpoint, time::now_micros};
use bazaar_store::Tx;
use futures::future::BoxFuture;

use crate::{
    domain::{OrderId, ReleaseReason, ReservationStatus, Sku},
    store::{reservations, stock},
};

/// The catalog's new products: each gets a stock record with nothing on hand.
pub const PRODUCTS: Subscription = Subscription {
    name: "inventory.products",
    producer: "catalog",
    types: &[ProductCreatedV1::TYPE],
};

/// The shipping service's outcomes: dispatched commits the order's stock, failed releases it.
pub const SHIPMENTS: Subscription = Subscription {
    name: "inventory.shipments",
    producer: "shipping",
    types: &[ShipmentDispatchedV1::TYPE, ShipmentFailedV1::TYPE],
};

/// The failpoint hit after a shipment event was applied, before the consumer's transaction
/// commits (a crash there must leave the event to be delivered again and applied once).
pub const SHIPMENT_APPLIED: &str = "inventory.shipment.applied";

/// The release reason of a shipment the carrier refused.
pub const SHIPMENT_FAILED_REASON: &str = "shipment_failed";

/// Subscribes every consumer of inventory to `bus`.
pub fn subscribe(bus: &Bus) {
    bus.subscribe(PRODUCTS, ProductCreated);
    bus.subscribe(SHIPMENTS, Shipments);
}

/// Handles `bazaar.catalog.product_created.v1`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProductCreated;

impl Handler for ProductCreated {
    fn handle<'a>(
        &'a self,
        tx: &'a mut Tx,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let product: ProductCreatedV1 = event.data()?;
            let sku = Sku::parse(&product.sku).map_err(|e| {
                HandlerError::permanent(format!("product {} has SKU {e}", product.product_id))
            })?;
            let created = stock::ensure(tx, &sku, now_micros())
                .await
                .context("create stock record")?;
            if created {
                tracing::info!(sku = %sku, product_id = %product.product_id, "Stock record created for a new product.");
            }
            Ok(())
        })
    }
}

/// Handles `bazaar.shipping.dispatched.v1` and `bazaar.shipping.failed.v1`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shipments;

fn order_id(raw: &str) -> Result<OrderId, HandlerError> {
    OrderId::parse(raw).map_err(|e| HandlerError::permanent(format!("shipment event: {e}")))
}

impl Handler for Shipments {
    fn handle<'a>(
        &'a self,
        tx: &'a mut Tx,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            match event.ty.as_str() {
                ShipmentDispatchedV1::TYPE => {
                    let shipped: ShipmentDispatchedV1 = event.data()?;
                    let order = order_id(&shipped.order_id)?;
                    let outcome = reservations::commit(tx, &order, now_micros())
                        .await
                        .context("commit the shipped order's stock")?;
                    match outcome.status {
                        Some(ReservationStatus::Committed) => {
                            tracing::info!(order_id = %order, replay = !outcome.changed, "Shipped order's stock committed.");
                        }
                        other => {
                            // Shipping claims an order before dispatching it, so this means
                            // a bug elsewhere; nothing here can fix it by retrying.
                            tracing::warn!(order_id = %order, status = ?other, "A dispatched order holds no reservation; nothing to commit.");
                        }
                    }
                }
                ShipmentFailedV1::TYPE => {
                    let failed: ShipmentFailedV1 = event.data()?;
                    let order = order_id(&failed.order_id)?;
                    let reason = ReleaseReason::parse(SHIPMENT_FAILED_REASON)
                        .map_err(HandlerError::permanent)?;
                    let outcome = reservations::release(tx, &order, &reason, now_micros())
                        .await
                        .context("release the failed shipment's stock")?;
                    tracing::info!(order_id = %order, status = ?outcome.status, replay = !outcome.changed, "Failed shipment's stock released.");
                }
                other => {
                    return Err(HandlerError::permanent(format!(
                        "unexpected event type {other}"
                    )))
                }
            }
            failpoint::hit_async(SHIPMENT_APPLIED)
                .await
                .map_err(HandlerError::retry)?;
            Ok(())
        })
    }
}
