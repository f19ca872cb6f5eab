//! Charge and refund requests, parsed.

use super::OrderId;

/// The longest card token accepted.
pub const CARD_TOKEN_MAX_LEN: usize = 64;

/// A valid charge request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeCommand {
    /// The order to charge for (one payment per order).
    pub order_id: OrderId,
    /// Minor units, ≥ 1.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// The processor's card token.
    pub card_token: String,
}

impl ChargeCommand {
    /// Parses the fields of a charge request; the error names every invalid field.
    pub fn parse(
        order_id: &str,
        amount_minor: i64,
        currency: &str,
        card_token: &str,
    ) -> Result<Self, String> {
        let mut errors = Vec::new();
        let order_id = OrderId::parse(order_id)
            .map_err(|e| errors.push(e.to_string()))
            .ok();
        if !(1..=1_000_000_000_000).contains(&amount_minor) {
            errors.push("amount_minor must be from 1 to 1000000000000".to_owned());
        }
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            errors.push("currency must be three upper-case letters".to_owned());
        }
        if card_token.is_empty()
            || card_token.len() > CARD_TOKEN_MAX_LEN
            || !card_token.bytes().all(|b| b.is_ascii_graphic())
        {
            errors.push(format!(
                "card_token must be 1 to {CARD_TOKEN_MAX_LEN} visible ASCII characters"
            ));
        }
        match order_id {
            Some(order_id) if errors.is_empty() => Ok(ChargeCommand {
                order_id,
                amount_minor,
                currency: currency.to_owned(),
                card_token: card_token.to_owned(),
            }),
            _ => Err(errors.join("; ")),
        }
    }
}

/// Why a refund is made (`customer_cancelled`, `shipment_failed`, …), carried by the
/// `payment.refunded` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundReason(String);

impl RefundReason {
    /// The reason when the caller gives none.
    pub const DEFAULT: &'static str = "requested";
    /// The reason of a refund after `shipping.failed`.
    pub const SHIPMENT_FAILED: &'static str = "shipment_failed";

    /// Parses a reason: empty means [`RefundReason::DEFAULT`]; otherwise 1–64 characters of
    /// `a-z 0-9 _ -`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Ok(Self(Self::DEFAULT.to_owned()));
        }
        if s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            Ok(Self(s.to_owned()))
        } else {
            Err("reason must be up to 64 characters of a-z, 0-9, '_' or '-'".to_owned())
        }
    }

    /// The reason of a refund after `shipping.failed`.
    pub fn shipment_failed() -> Self {
        Self(Self::SHIPMENT_FAILED.to_owned())
    }

    /// The reason as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_charge_parses() {
        let c = ChargeCommand::parse("o-1", 1299, "USD", "tok_visa");
        assert_eq!(c.map(|c| c.amount_minor), Ok(1299));
    }

    #[test]
    fn every_invalid_field_is_named() {
        let err = ChargeCommand::parse("", 0, "usd", "")
            .err()
            .unwrap_or_default();
        for field in ["order_id", "amount_minor", "currency", "card_token"] {
            assert!(err.contains(field), "{err}");
        }
    }

    #[test]
    fn reasons_default_and_have_a_shape() {
        assert_eq!(
            RefundReason::parse("").map(|r| r.as_str().to_owned()),
            Ok("requested".to_owned())
        );
        assert!(RefundReason::parse("customer_cancelled").is_ok());
        assert!(RefundReason::parse("Not OK").is_err());
    }
}
