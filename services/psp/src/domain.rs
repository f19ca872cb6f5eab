//! The processor's types and rules, free of I/O: a request body becomes one of these
//! commands only when every field is valid, so the store never re-checks a value.

mod behaviour;
mod charge;

pub use behaviour::{Behaviour, BehaviourError};
pub use charge::{
    Amount, AmountError, CardToken, CardTokenError, ChargeStatus, Currency, CurrencyError,
    IdempotencyKey, IdempotencyKeyError, NewCharge, NewRefund, DECLINE_CODE,
};
