//! What shipping consumes (`bazaar.order.confirmed.v1`) and publishes (`dispatched`,
//! `failed`, written by the [`crate::worker`] in the transaction of the status change).

use std::time::Duration;

use bazaar_contracts::events::{EventPayload, OrderConfirmedV1};
use bazaar_messaging::{Envelope, Handler, HandlerError, Subscription};
use bazaar_runtime::time::now_micros;
use bazaar_store::Tx;
use futures::future::BoxFuture;

use crate::{
    domain::OrderId,
    store::shipments::{self, NewShipment},
};

/// Shipping's subscription to the order service's confirmations.
pub const ORDER_CONFIRMED: Subscription = Subscription {
    name: "shipping.order_confirmed",
    producer: OrderConfirmedV1::SERVICE,
    types: &[OrderConfirmedV1::TYPE],
};

/// Creates the `waiting` shipment of a confirmed order, due after the handling time. A
/// second confirmation of the same order (a redelivery the inbox did not catch, or a replay)
/// creates nothing.
#[derive(Debug, Clone)]
pub struct OnOrderConfirmed {
    /// How long after confirmation a shipment becomes due.
    pub handling_time: Duration,
}

impl Handler for OnOrderConfirmed {
    fn handle<'a>(
        &'a self,
        tx: &'a mut Tx,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let confirmed: OrderConfirmedV1 = event.data()?;
            let order_id = OrderId::parse(&confirmed.order_id)
                .map_err(|e| HandlerError::permanent(format!("order.confirmed {e}")))?;
            let now = now_micros();
            let wait = i64::try_from(self.handling_time.as_micros()).unwrap_or(i64::MAX);
            let new = NewShipment {
                order_id,
                user_id: confirmed.user_id,
                postal_code: confirmed.shipping_address.postal_code,
                traceparent: event.traceparent.clone(),
                now_us: now,
                due_us: now.saturating_add(wait),
            };
            let created = shipments::insert_waiting(tx, &new).await?;
            if created {
                tracing::info!(order_id = %new.order_id, event_id = %event.id, "Shipment waiting for its handling time.");
            } else {
                tracing::debug!(order_id = %new.order_id, event_id = %event.id, "Order already has a shipment.");
            }
            Ok(())
        })
    }
}
