//! Inventory's types and rules, free of I/O: SKUs, quantities, stock levels, order ids and
//! the reservation state machine. Every value that reaches the store has been parsed into one
//! of these types, so the store never re-checks a field.

mod levels;
mod movement;
mod order_id;
mod quantity;
mod reservation;

pub use bazaar_contracts::sku::{Sku, SkuError};
pub use levels::{Levels, OnHand, OnHandError};
pub use movement::MovementKind;
pub use order_id::{OrderId, OrderIdError};
pub use quantity::{Quantity, QuantityError};
pub use reservation::{
    LinesError, ReleaseReason, ReleaseReasonError, ReservationStatus, ReserveLines, Transition,
    MAX_LINES,
};
