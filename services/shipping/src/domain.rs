//! Shipping's types and rules, free of I/O: the shipment's state machine, the carrier
//! stand-in, the retry schedule and the parameters of the admin list.

mod backoff;
mod carrier;
mod order_id;
mod shipment;

pub use backoff::{retry_delay, RETRY_BASE, RETRY_CAP};
pub use bazaar_runtime::page::{Limit, LimitError};
pub use carrier::{book, tracking_number, CarrierDecision, REJECTED_POSTAL_CODE, REJECTED_REASON};
pub use order_id::{OrderId, OrderIdError};
pub use shipment::{IllegalTransition, Shipment, ShipmentStatus, UnknownStatus};
