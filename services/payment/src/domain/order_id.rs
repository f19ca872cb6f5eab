//! Order ids as the payment service accepts them.

/// Why an order id is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderIdError {
    /// Empty, longer than 128 characters, or with a character outside `A-Z a-z 0-9 . _ -`.
    #[error("order_id must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_' or '-'")]
    Invalid,
}

/// The id of the order a payment is for (the order service's UUIDv7, but any id of the
/// accepted shape works). The shape keeps it safe inside the processor's idempotency keys
/// and URL paths.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderId(String);

impl OrderId {
    /// The longest id accepted.
    pub const MAX_LEN: usize = 128;

    /// Parses an id.
    pub fn parse(s: &str) -> Result<Self, OrderIdError> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(OrderIdError::Invalid)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The processor's idempotency key for this order's charge: the same for every attempt,
    /// so the processor charges at most once whatever the retries.
    pub fn charge_key(&self) -> String {
        format!("order-{}", self.0)
    }

    /// The processor's idempotency key for this order's refund.
    pub fn refund_key(&self) -> String {
        format!("refund-{}", self.0)
    }
}

impl std::fmt::Display for OrderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_uuids_and_refuses_path_breaking_ids() {
        let id = OrderId::parse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
        assert_eq!(
            id.as_ref().map(OrderId::charge_key),
            Ok("order-0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".to_owned())
        );
        assert_eq!(
            id.map(|i| i.refund_key()),
            Ok("refund-0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".to_owned())
        );
        assert!(OrderId::parse("").is_err());
        assert!(OrderId::parse("a/b").is_err());
        assert!(OrderId::parse("a b").is_err());
        assert!(OrderId::parse(&"x".repeat(129)).is_err());
        assert!(OrderId::parse(&"x".repeat(128)).is_ok());
    }
}
