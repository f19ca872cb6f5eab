//! Events the payment service consumes, and the worker that acts on them.
//!
//! `bazaar.shipping.failed.v1` means the order's money must go back. The consumer's
//! transaction only records a refund request (with the inbox entry, atomically): the refund
//! itself needs the processor, and a network call must never run inside that transaction
//! (on SQLite it holds the only write connection; a slow processor would stall every
//! writer). The [`RefundWorker`] performs open requests in the background, retrying with
//! backoff while the processor is unavailable. Effects happen once: the request is keyed by
//! order, and the processor's refund by `refund-<order_id>`.
//! (The events this service publishes are written by [`crate::payments`].)

mod refund_worker;
mod shipping_failed;

use bazaar_contracts::events::{EventPayload, ShipmentFailedV1};
use bazaar_messaging::Subscription;

pub use refund_worker::RefundWorker;
pub use shipping_failed::ShipmentFailedHandler;

/// The subscription to failed shipments.
pub const SHIPPING_FAILED: Subscription = Subscription {
    name: "payment.shipping_failed",
    producer: "shipping",
    types: &[<ShipmentFailedV1 as EventPayload>::TYPE],
};
