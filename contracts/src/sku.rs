//! The stock keeping unit: the merchant's own product code. The catalog keeps it unique per
//! product, inventory keys every stock record by it, and the events between them carry it,
//! so both parse it with this one rule: a SKU the catalog accepts is one inventory accepts.

use std::fmt;

/// A valid SKU: 3–32 characters of `[A-Z0-9-]`, not starting or ending with `-`.
///
/// Input is trimmed and upper-cased first, so ` bk-1001 ` and `BK-1001` are the same SKU.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sku(String);

/// Why a string is not a SKU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkuError {
    /// Fewer than 3 or more than 32 characters after trimming.
    #[error("must be 3 to 32 characters long")]
    Length,
    /// A character outside `[A-Z0-9-]` (after upper-casing).
    #[error("may contain only letters A-Z, digits and '-'")]
    Charset,
    /// Starts or ends with `-`.
    #[error("must not start or end with '-'")]
    Dash,
}

impl Sku {
    /// The shortest SKU accepted.
    pub const MIN_LEN: usize = 3;
    /// The longest SKU accepted.
    pub const MAX_LEN: usize = 32;

    /// Parses a SKU, trimming and upper-casing it.
    pub fn parse(input: &str) -> Result<Sku, SkuError> {
        let s = input.trim();
        // Check the charset before the length so that multi-byte input gets the clearer error.
        if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(SkuError::Charset);
        }
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&s.len()) {
            return Err(SkuError::Length);
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(SkuError::Dash);
        }
        Ok(Sku(s.to_ascii_uppercase()))
    }

    /// The SKU as stored and shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn trims_and_upper_cases() {
        assert_eq!(Sku::parse("  bk-1001 ").unwrap().as_str(), "BK-1001");
        assert_eq!(Sku::parse("ABC").unwrap().as_str(), "ABC");
    }

    #[test]
    fn refuses_bad_lengths_characters_and_dashes() {
        assert_eq!(Sku::parse("AB"), Err(SkuError::Length));
        assert_eq!(Sku::parse(""), Err(SkuError::Length));
        assert_eq!(Sku::parse(&"A".repeat(33)), Err(SkuError::Length));
        assert!(Sku::parse(&"A".repeat(32)).is_ok());
        assert_eq!(Sku::parse("AB_1"), Err(SkuError::Charset));
        assert_eq!(Sku::parse("AB 1"), Err(SkuError::Charset));
        assert_eq!(Sku::parse("ÄBC"), Err(SkuError::Charset));
        assert_eq!(Sku::parse("-ABC"), Err(SkuError::Dash));
        assert_eq!(Sku::parse("ABC-"), Err(SkuError::Dash));
    }

    #[test]
    fn every_demo_sku_is_valid_and_already_canonical() {
        for product in crate::demo::PRODUCTS {
            let sku = Sku::parse(product.sku).unwrap();
            assert_eq!(sku.as_str(), product.sku);
            assert_eq!(sku.to_string(), product.sku);
        }
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_accepted_skus_follow_the_rules(s in any::<String>()) {
            if let Ok(sku) = Sku::parse(&s) {
                let v = sku.as_str();
                prop_assert!((3..=32).contains(&v.len()));
                prop_assert!(v.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-'));
                prop_assert!(!v.starts_with('-') && !v.ends_with('-'));
            }
        }

        #[test]
        fn valid_skus_round_trip_in_any_case(s in "[A-Za-z0-9][A-Za-z0-9-]{1,30}[A-Za-z0-9]") {
            let sku = Sku::parse(&s).unwrap();
            prop_assert_eq!(sku.as_str(), s.to_ascii_uppercase());
            prop_assert_eq!(Sku::parse(sku.as_str()).unwrap(), sku);
        }
    }
}
