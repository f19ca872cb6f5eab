//! The order service's types and rules, free of I/O: statuses and their transitions, the
//! placement command parsed from a request body, idempotency keys, saga steps and backoff.

mod country;
mod idempotency;
mod order;
mod place;
mod saga;
mod status;

pub use country::is_country_code;
pub use idempotency::{request_hash, IdempotencyKey, IdempotencyKeyError};
pub use order::{Address, HistoryEntry, Money, Order, OrderLine};
pub use place::{CatalogPrice, LineRequest, PlaceOrder, MAX_LINES, MAX_QUANTITY};
pub use saga::{backoff, SagaStatus, Step};
pub use status::{OrderStatus, PaymentStatus, ShipmentStatus, StatusReason, TransitionError};
