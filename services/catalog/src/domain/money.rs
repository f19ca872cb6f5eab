//! Prices: an amount in minor units (cents) and an ISO 4217 currency.

use std::fmt;

/// An ISO 4217 currency from the fixed list the shop accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(&'static str);

/// Why a string is not an accepted currency.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    /// Not three upper-case ASCII letters.
    #[error("must be a 3-letter upper-case ISO 4217 code")]
    Format,
    /// A well-formed code the shop does not sell in.
    #[error("is not a supported currency (supported: USD, EUR, GBP, JPY, CHF, CAD, AUD, SEK, NOK, DKK, PLN, CZK)")]
    Unsupported,
}

impl Currency {
    /// Every currency the shop accepts.
    pub const SUPPORTED: [&'static str; 12] = [
        "USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "SEK", "NOK", "DKK", "PLN", "CZK",
    ];

    /// The US dollar, the currency of the demo catalog.
    pub const USD: Currency = Currency("USD");

    /// Parses an upper-case ISO 4217 code from the allow-list.
    pub fn parse(input: &str) -> Result<Currency, CurrencyError> {
        if input.len() != 3 || !input.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(CurrencyError::Format);
        }
        Self::SUPPORTED
            .iter()
            .find(|c| **c == input)
            .map(|c| Currency(c))
            .ok_or(CurrencyError::Unsupported)
    }

    /// The code, e.g. `USD`.
    pub fn code(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A price: a non-negative amount in minor units of its currency, at most 10 000 000 000
/// (one hundred million major units), which keeps sums over an order far from `i64` limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

/// Why an amount is not a price.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Below zero or above [`Money::MAX_MINOR`].
    #[error("must be an integer from 0 to 10000000000 (minor units)")]
    OutOfRange,
}

impl Money {
    /// The largest amount accepted, in minor units.
    pub const MAX_MINOR: i64 = 10_000_000_000;

    /// A price of `amount_minor` in `currency`.
    pub fn new(amount_minor: i64, currency: Currency) -> Result<Money, AmountError> {
        Self::check_amount(amount_minor)?;
        Ok(Money {
            amount_minor,
            currency,
        })
    }

    /// Checks an amount on its own (to report it even when the currency is wrong too).
    pub fn check_amount(amount_minor: i64) -> Result<i64, AmountError> {
        if (0..=Self::MAX_MINOR).contains(&amount_minor) {
            Ok(amount_minor)
        } else {
            Err(AmountError::OutOfRange)
        }
    }

    /// The amount in minor units (cents for USD).
    pub fn amount_minor(self) -> i64 {
        self.amount_minor
    }

    /// The currency.
    pub fn currency(self) -> Currency {
        self.currency
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_supported_currencies_only() {
        for code in Currency::SUPPORTED {
            assert_eq!(Currency::parse(code).unwrap().code(), code);
        }
        assert_eq!(Currency::parse("usd"), Err(CurrencyError::Format));
        assert_eq!(Currency::parse("US"), Err(CurrencyError::Format));
        assert_eq!(Currency::parse("USDX"), Err(CurrencyError::Format));
        assert_eq!(Currency::parse("U$D"), Err(CurrencyError::Format));
        assert_eq!(Currency::parse("XAU"), Err(CurrencyError::Unsupported));
        assert_eq!(Currency::parse("BTC"), Err(CurrencyError::Unsupported));
    }

    #[test]
    fn amounts_are_bounded() {
        assert_eq!(Money::new(0, Currency::USD).unwrap().amount_minor(), 0);
        assert_eq!(
            Money::new(Money::MAX_MINOR, Currency::USD)
                .unwrap()
                .amount_minor(),
            10_000_000_000
        );
        assert_eq!(Money::new(-1, Currency::USD), Err(AmountError::OutOfRange));
        assert_eq!(
            Money::new(Money::MAX_MINOR + 1, Currency::USD),
            Err(AmountError::OutOfRange)
        );
        assert_eq!(
            Money::new(i64::MIN, Currency::USD),
            Err(AmountError::OutOfRange)
        );
    }

    proptest! {
        #[test]
        fn money_accepts_exactly_the_documented_range(amount in any::<i64>(), i in 0usize..12) {
            let currency = Currency::parse(Currency::SUPPORTED[i]).unwrap();
            match Money::new(amount, currency) {
                Ok(m) => {
                    prop_assert!((0..=Money::MAX_MINOR).contains(&amount));
                    prop_assert_eq!(m.amount_minor(), amount);
                    prop_assert_eq!(m.currency(), currency);
                }
                Err(_) => prop_assert!(!(0..=Money::MAX_MINOR).contains(&amount)),
            }
        }

        #[test]
        fn currency_parsing_never_panics_and_accepts_only_the_list(s in any::<String>()) {
            if let Ok(c) = Currency::parse(&s) {
                prop_assert!(Currency::SUPPORTED.contains(&c.code()));
                prop_assert_eq!(c.code(), s.as_str());
            }
        }

        #[test]
        fn three_letter_codes_are_accepted_iff_listed(s in "[A-Z]{3}") {
            prop_assert_eq!(Currency::parse(&s).is_ok(), Currency::SUPPORTED.contains(&s.as_str()));
        }
    }
}
