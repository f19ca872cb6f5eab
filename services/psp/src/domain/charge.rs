//! Charges and refunds: idempotency keys, amounts, currencies and test card tokens.

/// Why an idempotency key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyKeyError {
    /// Empty, longer than 255 characters, or with a character outside `A-Z a-z 0-9 . _ : -`.
    #[error("must be 1 to 255 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'")]
    Invalid,
}

/// The key a client chooses for a charge or refund: the same key always means the same
/// operation. Limited to characters that are safe in a URL path segment, because charges are
/// looked up by key (`GET /v1/charges/{key}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The longest key accepted.
    pub const MAX_LEN: usize = 255;

    /// Parses a key.
    pub fn parse(s: &str) -> Result<Self, IdempotencyKeyError> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdempotencyKeyError::Invalid)
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why an amount is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Zero, negative, or absurdly large.
    #[error("must be a whole number of minor units from 1 to 1000000000000")]
    OutOfRange,
}

/// A positive amount of money in minor units (cents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Amount(i64);

impl Amount {
    /// The largest amount accepted (ten billion in major units).
    pub const MAX: i64 = 1_000_000_000_000;

    /// An amount of `minor` units.
    pub fn new(minor: i64) -> Result<Self, AmountError> {
        if (1..=Self::MAX).contains(&minor) {
            Ok(Self(minor))
        } else {
            Err(AmountError::OutOfRange)
        }
    }

    /// Minor units.
    pub fn minor(self) -> i64 {
        self.0
    }
}

/// Why a currency is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    /// Not three upper-case ASCII letters.
    #[error("must be an ISO 4217 code of three upper-case letters")]
    Invalid,
}

/// An ISO 4217 currency code (shape only: the processor accepts any three letters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency(String);

impl Currency {
    /// Parses `USD`-shaped codes.
    pub fn parse(s: &str) -> Result<Self, CurrencyError> {
        if s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(CurrencyError::Invalid)
        }
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a card token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardTokenError {
    /// Does not start with `tok_`.
    #[error("must be a test token starting with tok_")]
    NotAToken,
    /// Too long or with characters other than letters, digits and `_`.
    #[error("must be at most 64 characters of A-Z, a-z, 0-9 and '_'")]
    Invalid,
}

/// The decline code of `tok_declined`.
pub const DECLINE_CODE: &str = "card_declined";

/// A test card token; the token decides the outcome of a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardToken {
    /// `tok_declined`: the charge is declined with [`DECLINE_CODE`].
    Declined,
    /// `tok_timeout`: the charge is captured, but the answer comes late.
    Timeout,
    /// Any other `tok_…`: captured.
    Captures(String),
}

impl CardToken {
    /// Parses a token.
    pub fn parse(s: &str) -> Result<Self, CardTokenError> {
        if !s.starts_with("tok_") {
            return Err(CardTokenError::NotAToken);
        }
        if s.len() > 64 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(CardTokenError::Invalid);
        }
        Ok(match s {
            "tok_declined" => Self::Declined,
            "tok_timeout" => Self::Timeout,
            other => Self::Captures(other.to_owned()),
        })
    }

    /// The token as sent.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Declined => "tok_declined",
            Self::Timeout => "tok_timeout",
            Self::Captures(s) => s,
        }
    }

    /// What charging this card does, and the decline code if it declines.
    pub fn outcome(&self) -> (ChargeStatus, Option<&'static str>) {
        match self {
            Self::Declined => (ChargeStatus::Declined, Some(DECLINE_CODE)),
            Self::Timeout | Self::Captures(_) => (ChargeStatus::Captured, None),
        }
    }

    /// Whether the processor answers late for this card (after recording the charge).
    pub fn answers_late(&self) -> bool {
        matches!(self, Self::Timeout)
    }
}

/// The outcome of a charge; the SQL stores [`ChargeStatus::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeStatus {
    /// The money was taken.
    Captured,
    /// The card was refused.
    Declined,
}

impl ChargeStatus {
    /// The stable name (`captured`, `declined`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Captured => "captured",
            Self::Declined => "declined",
        }
    }

    /// The status named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "captured" => Some(Self::Captured),
            "declined" => Some(Self::Declined),
            _ => None,
        }
    }
}

/// A valid charge request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCharge {
    /// Names the charge: the same key again returns this charge.
    pub idempotency_key: IdempotencyKey,
    /// How much.
    pub amount: Amount,
    /// In what currency.
    pub currency: Currency,
    /// The card to charge.
    pub card_token: CardToken,
}

/// A valid refund request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefund {
    /// Names the refund: the same key again returns this refund.
    pub idempotency_key: IdempotencyKey,
    /// The charge to refund (by its idempotency key).
    pub charge_idempotency_key: IdempotencyKey,
    /// How much to give back.
    pub amount: Amount,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_decide_the_outcome() {
        assert_eq!(
            CardToken::parse("tok_declined").map(|t| t.outcome()),
            Ok((ChargeStatus::Declined, Some(DECLINE_CODE)))
        );
        let slow = CardToken::parse("tok_timeout");
        assert_eq!(
            slow.as_ref().map(CardToken::outcome),
            Ok((ChargeStatus::Captured, None))
        );
        assert_eq!(slow.map(|t| t.answers_late()), Ok(true));
        let visa = CardToken::parse("tok_visa");
        assert_eq!(
            visa.as_ref().map(CardToken::outcome),
            Ok((ChargeStatus::Captured, None))
        );
        assert_eq!(visa.map(|t| t.answers_late()), Ok(false));
    }

    #[test]
    fn refuses_what_is_not_a_test_token() {
        assert_eq!(
            CardToken::parse("4242424242424242"),
            Err(CardTokenError::NotAToken)
        );
        assert_eq!(CardToken::parse("tok_a b"), Err(CardTokenError::Invalid));
        assert_eq!(
            CardToken::parse(&format!("tok_{}", "x".repeat(61))),
            Err(CardTokenError::Invalid)
        );
    }

    #[test]
    fn keys_are_path_safe_and_bounded() {
        assert!(IdempotencyKey::parse("order-0190abcd-ef").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("a/b").is_err());
        assert!(IdempotencyKey::parse("a b").is_err());
    }

    #[test]
    fn amounts_and_currencies_have_a_shape() {
        assert!(Amount::new(0).is_err());
        assert!(Amount::new(-5).is_err());
        assert_eq!(Amount::new(1).map(Amount::minor), Ok(1));
        assert!(Amount::new(Amount::MAX + 1).is_err());
        assert!(Currency::parse("USD").is_ok());
        assert!(Currency::parse("usd").is_err());
        assert!(Currency::parse("US").is_err());
    }
}
