//! The payment service's types and rules, free of I/O: requests are parsed into these types
//! before anything is stored or sent to the processor.

mod command;
mod order_id;
mod status;

pub use command::{ChargeCommand, RefundReason, CARD_TOKEN_MAX_LEN};
pub use order_id::{OrderId, OrderIdError};
pub use status::{IllegalTransition, PaymentEvent, PaymentStatus};
