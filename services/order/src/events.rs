//! What the order service consumes: catalog prices into the local replica, shipping and
//! payment outcomes into the orders, and every order-related event into the order-history
//! read model.
//!
//! Each subscription's handler runs inside the consumer's transaction (with the inbox record),
//! so a redelivered event changes nothing twice; and every write here is conditional on the
//! state it moves from, so events applied late or out of order never move anything back.

use bazaar_contracts::events::{
    EventPayload, OrderCancelledV1, OrderConfirmedV1, OrderPaymentPendingV1, OrderPlacedV1,
    OrderRejectedV1, OrderShippedV1, PaymentCapturedV1, PaymentRefundedV1, ProductCreatedV1,
    ProductUpdatedV1, ShipmentDispatchedV1, ShipmentFailedV1,
};
use bazaar_messaging::{Bus, Envelope, Handler, HandlerError, Subscription};
use bazaar_runtime::time::now_micros;
use bazaar_store::Tx;
use futures::future::BoxFuture;

use crate::{
    domain::{CatalogPrice, Money, OrderStatus, PaymentStatus, ShipmentStatus, StatusReason},
    saga::count_outcome,
    store::{orders, prices, views},
};

/// Catalog prices into the `prices` replica.
pub const PRICES: Subscription = Subscription {
    name: "order.prices",
    producer: "catalog",
    types: &[ProductCreatedV1::TYPE, ProductUpdatedV1::TYPE],
};

/// Shipping outcomes into the orders.
pub const SHIPPING: Subscription = Subscription {
    name: "order.shipping",
    producer: "shipping",
    types: &[ShipmentDispatchedV1::TYPE, ShipmentFailedV1::TYPE],
};

/// Payment outcomes into the orders' payment status.
pub const PAYMENTS: Subscription = Subscription {
    name: "order.payments",
    producer: "payment",
    types: &[PaymentCapturedV1::TYPE, PaymentRefundedV1::TYPE],
};

/// The order service's own events into the read model.
pub const VIEWS_OWN: Subscription = Subscription {
    name: "order.views.own",
    producer: "order",
    types: &[
        OrderPlacedV1::TYPE,
        OrderPaymentPendingV1::TYPE,
        OrderConfirmedV1::TYPE,
        OrderRejectedV1::TYPE,
        OrderCancelledV1::TYPE,
        OrderShippedV1::TYPE,
    ],
};

/// Payment events into the read model.
pub const VIEWS_PAYMENT: Subscription = Subscription {
    name: "order.views.payment",
    producer: "payment",
    types: &[PaymentCapturedV1::TYPE, PaymentRefundedV1::TYPE],
};

/// Shipping events into the read model.
pub const VIEWS_SHIPPING: Subscription = Subscription {
    name: "order.views.shipping",
    producer: "shipping",
    types: &[ShipmentDispatchedV1::TYPE, ShipmentFailedV1::TYPE],
};

/// Starts every consumer of the order service on `bus`.
pub fn subscribe(bus: &Bus) {
    bus.subscribe(PRICES, Prices);
    bus.subscribe(SHIPPING, Shipping);
    bus.subscribe(PAYMENTS, Payments);
    bus.subscribe(VIEWS_OWN, Projector);
    bus.subscribe(VIEWS_PAYMENT, Projector);
    bus.subscribe(VIEWS_SHIPPING, Projector);
}

/// When the event was published, in µs (now, if its time does not parse).
fn event_us(event: &Envelope) -> i64 {
    time::OffsetDateTime::parse(&event.time, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000).ok())
        .unwrap_or_else(now_micros)
}

fn unexpected(event: &Envelope) -> HandlerError {
    HandlerError::permanent(format!("unexpected event type {}", event.ty))
}

/// Upserts the `prices` replica.
struct Prices;

impl Handler for Prices {
    fn handle<'a>(
        &'a self,
        tx: &'a mut Tx,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let (product_id, price) = match event.ty.as_str() {
                ProductCreatedV1::TYPE => {
                    let e: ProductCreatedV1 = event.data()?;
                    (e.product_id, price_of(e.sku, e.name, e.price))
                }
                ProductUpdatedV1::TYPE => {
                    let e: ProductUpdatedV1 = event.data()?;
                    (e.product_id, price_of(e.sku, e.name, e.price))
                }
                _ => return Err(unexpected(event)),
            };
            let Ok(id) = uuid::Uuid::try_parse(&product_id) else {
                return Err(HandlerError::permanent(format!(
                    "product id {product_id:?} is not a UUID"
                )));
            };
            prices::apply_event(tx, &id.hyphenated().to_string(), &price, event_us(event)).await?;
            Ok(())
        })
    }
}

fn price_of(sku: String, name: String, price: bazaar_contracts::events::MoneyV1) -> CatalogPrice {
    CatalogPrice {
        sku,
        name,
        price: Money {
            amount_minor: price.amount_minor,
            currency: price.currency,
        },
    }
}

/// Shipping's outcome moves a confirmed order to `shipped` or `cancelled(shipment_failed)`.
/// Inventory and payment compensate a failed shipment on their own from the same event.
struct Shipping;

impl Handler for Shipping {
    fn handle<'a>(
        &'a self,
        tx: &'a mut Tx,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let now = now_micros();
            match event.ty.as_str() {
                ShipmentDispatchedV1::TYPE => {
                    let e: ShipmentDispatchedV1 = event.data()?;
                    match orders::mark_shipped(tx, &e.order_id, &e.tracking_number, now).await? {
                        Some(user_id) => {
                            bazaar_messaging::publish(
                                tx,
                                &OrderShippedV1 {
                                    order_id: e.order_id.clone(),
                                    user_id,
                                    tracking_number: e.tracking_number,
                                },
                            )
                            .await?;
                            count_outcome("shipped");
                            tracing::info!(order_id = %e.order_id, "Order shipped.");
                        }
                        None => {
                            tracing::debug!(order_id = %e.order_id, "Dispatch of an order that is not confirmed; nothing to do.");
                        }
                    }
                }
                ShipmentFailedV1::TYPE => {
                    let e: ShipmentFailedV1 = event.data()?;
                    match orders::mark_shipment_failed(tx, &e.order_id, now).await? {
                        Some(user_id) => {
                            bazaar_messaging::publish(
                                tx,
                                &OrderCancelledV1 {
                                    order_id: e.order_id.clone(),
                                    user_id,
                                    reason: StatusReason::ShipmentFailed.as_str().to_owned(),
                                },
                            )
                            .await?;
                            count_outcome("cancelled");
                            tracing::info!(order_id = %e.order_id, reason = %e.reason, "Shipment failed; order cancelled.");
                        }
                        None => {
                            tracing::debug!(order_id = %e.order_id, "Failed shipment of an order that is not confirmed; nothing to do.");
                        }
                    }
                }
                _ => return Err(unexpected(event)),
            }
            Ok(())
        })
    }
}

/// Payment's events raise the order's payment status.
struct Payments;

impl Handler for Payments {
    fn handle<'a>(
        &'a self,
        tx: &'a mut Tx,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let (order_id, status) = match event.ty.as_str() {
                PaymentCapturedV1::TYPE => {
                    let e: PaymentCapturedV1 = event.data()?;
                    (e.order_id, PaymentStatus::Captured)
                }
                PaymentRefundedV1::TYPE => {
                    let e: PaymentRefundedV1 = event.data()?;
                    (e.order_id, PaymentStatus::Refunded)
                }
                _ => return Err(unexpected(event)),
            };
            orders::raise_payment_status(tx, &order_id, status, now_micros()).await?;
            Ok(())
        })
    }
}

/// Projects events into `order_views`.
struct Projector;

impl Handler for Projector {
    fn handle<'a>(
        &'a self,
        tx: &'a mut Tx,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let at = event_us(event);
            match event.ty.as_str() {
                OrderPlacedV1::TYPE => {
                    let e: OrderPlacedV1 = event.data()?;
                    let units = e.items.iter().map(|l| l.quantity).sum();
                    views::apply_facts(
                        tx,
                        &e.order_id,
                        &e.user_id,
                        e.total.amount_minor,
                        &e.total.currency,
                        units,
                        at,
                    )
                    .await?;
                }
                OrderPaymentPendingV1::TYPE => {
                    let e: OrderPaymentPendingV1 = event.data()?;
                    views::apply_status(
                        tx,
                        &e.order_id,
                        Some(&e.user_id),
                        OrderStatus::PaymentPending,
                        None,
                        at,
                    )
                    .await?;
                    views::apply_payment(tx, &e.order_id, PaymentStatus::Pending, at).await?;
                }
                OrderConfirmedV1::TYPE => {
                    let e: OrderConfirmedV1 = event.data()?;
                    let units = e.items.iter().map(|l| l.quantity).sum();
                    views::apply_facts(
                        tx,
                        &e.order_id,
                        &e.user_id,
                        e.total.amount_minor,
                        &e.total.currency,
                        units,
                        at,
                    )
                    .await?;
                    views::apply_status(
                        tx,
                        &e.order_id,
                        Some(&e.user_id),
                        OrderStatus::Confirmed,
                        None,
                        at,
                    )
                    .await?;
                    views::apply_payment(tx, &e.order_id, PaymentStatus::Captured, at).await?;
                }
                OrderRejectedV1::TYPE => {
                    let e: OrderRejectedV1 = event.data()?;
                    let reason = StatusReason::parse(&e.reason);
                    views::apply_status(
                        tx,
                        &e.order_id,
                        Some(&e.user_id),
                        OrderStatus::Rejected,
                        reason,
                        at,
                    )
                    .await?;
                    if reason == Some(StatusReason::PaymentDeclined) {
                        views::apply_payment(tx, &e.order_id, PaymentStatus::Declined, at).await?;
                    }
                }
                OrderCancelledV1::TYPE => {
                    let e: OrderCancelledV1 = event.data()?;
                    views::apply_status(
                        tx,
                        &e.order_id,
                        Some(&e.user_id),
                        OrderStatus::Cancelled,
                        StatusReason::parse(&e.reason),
                        at,
                    )
                    .await?;
                }
                OrderShippedV1::TYPE => {
                    let e: OrderShippedV1 = event.data()?;
                    views::apply_status(
                        tx,
                        &e.order_id,
                        Some(&e.user_id),
                        OrderStatus::Shipped,
                        None,
                        at,
                    )
                    .await?;
                    views::apply_shipment(
                        tx,
                        &e.order_id,
                        &e.user_id,
                        ShipmentStatus::Dispatched,
                        at,
                    )
                    .await?;
                }
                PaymentCapturedV1::TYPE => {
                    let e: PaymentCapturedV1 = event.data()?;
                    views::apply_payment(tx, &e.order_id, PaymentStatus::Captured, at).await?;
                }
                PaymentRefundedV1::TYPE => {
                    let e: PaymentRefundedV1 = event.data()?;
                    views::apply_payment(tx, &e.order_id, PaymentStatus::Refunded, at).await?;
                }
                ShipmentDispatchedV1::TYPE => {
                    let e: ShipmentDispatchedV1 = event.data()?;
                    views::apply_shipment(
                        tx,
                        &e.order_id,
                        &e.user_id,
                        ShipmentStatus::Dispatched,
                        at,
                    )
                    .await?;
                }
                ShipmentFailedV1::TYPE => {
                    let e: ShipmentFailedV1 = event.data()?;
                    views::apply_shipment(tx, &e.order_id, &e.user_id, ShipmentStatus::Failed, at)
                        .await?;
                }
                _ => return Err(unexpected(event)),
            }
            Ok(())
        })
    }
}
