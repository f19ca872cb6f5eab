//! `bazaar.shipping.failed.v1` → a refund request.

use std::sync::Arc;

use bazaar_contracts::events::ShipmentFailedV1;
use bazaar_messaging::{Envelope, Handler, HandlerError};
use bazaar_runtime::time::now_micros;
use bazaar_store::Tx;
use futures::future::BoxFuture;
use tokio::sync::Notify;

use crate::{
    domain::{OrderId, RefundReason},
    store::refund_requests,
};

/// Records a `shipment_failed` refund request for the order, in the consumer's transaction,
/// and wakes the [`super::RefundWorker`].
#[derive(Debug, Clone)]
pub struct ShipmentFailedHandler {
    wake: Arc<Notify>,
}

impl ShipmentFailedHandler {
    /// A handler that wakes the worker waiting on `wake`.
    pub fn new(wake: Arc<Notify>) -> Self {
        ShipmentFailedHandler { wake }
    }
}

impl Handler for ShipmentFailedHandler {
    fn handle<'a>(
        &'a self,
        tx: &'a mut Tx,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let failed: ShipmentFailedV1 = event.data()?;
            let order_id = OrderId::parse(&failed.order_id).map_err(|e| {
                HandlerError::permanent(format!("shipping.failed for an invalid order id: {e}"))
            })?;
            let new = refund_requests::request(
                tx,
                &order_id,
                RefundReason::SHIPMENT_FAILED,
                &event.id,
                now_micros(),
            )
            .await?;
            if new {
                tracing::info!(order_id = %order_id, "Shipment failed; refund requested.");
                // The worker may look before this transaction commits; it looks again at its
                // next poll.
                self.wake.notify_one();
            }
            Ok(())
        })
    }
}
