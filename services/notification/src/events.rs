//! What notification consumes: identity's registrations and the order service's outcomes.

use bazaar_contracts::events::{
    EventPayload, OrderCancelledV1, OrderConfirmedV1, OrderRejectedV1, OrderShippedV1,
    UserRegisteredV1,
};
use bazaar_messaging::{Envelope, Handler, HandlerError, Subscription};
use bazaar_runtime::time::now_micros;
use bazaar_store::Tx;
use futures::future::BoxFuture;

use crate::{domain::NewNotification, store::notifications};

/// Welcome notifications.
pub const USERS: Subscription = Subscription {
    name: "notification.users",
    producer: UserRegisteredV1::SERVICE,
    types: &[UserRegisteredV1::TYPE],
};

/// Order notifications.
pub const ORDERS: Subscription = Subscription {
    name: "notification.orders",
    producer: OrderConfirmedV1::SERVICE,
    types: &[
        OrderConfirmedV1::TYPE,
        OrderRejectedV1::TYPE,
        OrderCancelledV1::TYPE,
        OrderShippedV1::TYPE,
    ],
};

/// Turns each event into its user's notification: one per event, whatever is redelivered
/// (the inbox skips a known event; the unique `event_id` catches anything else).
#[derive(Debug, Clone, Copy, Default)]
pub struct Notify;

impl Notify {
    /// The notification `event` asks for; `None` for a type this service does not handle.
    pub fn notification_for(event: &Envelope) -> Result<Option<NewNotification>, HandlerError> {
        let new = match event.ty.as_str() {
            UserRegisteredV1::TYPE => NewNotification::welcome(&event.data()?),
            OrderConfirmedV1::TYPE => NewNotification::order_confirmed(&event.data()?),
            OrderRejectedV1::TYPE => NewNotification::order_rejected(&event.data()?),
            OrderCancelledV1::TYPE => NewNotification::order_cancelled(&event.data()?),
            OrderShippedV1::TYPE => NewNotification::order_shipped(&event.data()?),
            _ => return Ok(None),
        };
        if new.user_id.trim().is_empty() {
            return Err(HandlerError::permanent(format!(
                "{} {} names no user",
                event.ty, event.id
            )));
        }
        Ok(Some(new))
    }
}

impl Handler for Notify {
    fn handle<'a>(
        &'a self,
        tx: &'a mut Tx,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            // A fault to make every event poison, for the dead-letter tests.
            bazaar_runtime::failpoint::hit_async("notification.handle")
                .await
                .map_err(|e| HandlerError::Retry(e.into()))?;
            let Some(new) = Self::notification_for(event)? else {
                tracing::debug!(event_type = %event.ty, event_id = %event.id, "Not an event to notify about.");
                return Ok(());
            };
            if notifications::insert(tx, &new, &event.id, now_micros()).await? {
                tracing::info!(kind = %new.kind, event_id = %event.id, "Notification created.");
            }
            Ok(())
        })
    }
}
