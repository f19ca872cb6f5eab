//! The id of the order a reservation belongs to: the idempotency key of every stock call.

use std::fmt;

/// An order id as callers send it: 1–128 visible ASCII characters (the order service sends
/// UUIDv7s; inventory only needs a stable key, so it does not insist on the format).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderId(String);

/// Why a string is not an order id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderIdError {
    /// Empty.
    #[error("order_id is required")]
    Empty,
    /// Longer than [`OrderId::MAX_LEN`].
    #[error("order_id must be at most 128 characters")]
    TooLong,
    /// A space, control or non-ASCII character.
    #[error("order_id may contain only visible ASCII characters")]
    Charset,
}

impl OrderId {
    /// The longest order id accepted.
    pub const MAX_LEN: usize = 128;

    /// Parses an order id (no trimming: a key is compared byte for byte).
    pub fn parse(input: &str) -> Result<OrderId, OrderIdError> {
        if input.is_empty() {
            return Err(OrderIdError::Empty);
        }
        if !input.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(OrderIdError::Charset);
        }
        if input.len() > Self::MAX_LEN {
            return Err(OrderIdError::TooLong);
        }
        Ok(OrderId(input.to_owned()))
    }

    /// The id as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_uuids_and_refuses_empty_long_or_odd_ids() {
        let id = "01900000-0000-7000-8000-000000000000";
        assert_eq!(OrderId::parse(id).unwrap().as_str(), id);
        assert_eq!(OrderId::parse(""), Err(OrderIdError::Empty));
        assert_eq!(OrderId::parse(" a"), Err(OrderIdError::Charset));
        assert_eq!(OrderId::parse("a\nb"), Err(OrderIdError::Charset));
        assert_eq!(OrderId::parse("ö"), Err(OrderIdError::Charset));
        assert_eq!(OrderId::parse(&"a".repeat(129)), Err(OrderIdError::TooLong));
        assert!(OrderId::parse(&"a".repeat(128)).is_ok());
    }
}
