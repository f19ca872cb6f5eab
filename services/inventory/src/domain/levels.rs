//! A SKU's stock levels and the rules that keep them sane.

/// The stock of one SKU: `on_hand` units in the warehouse, of which `reserved` are held for
/// orders. Always `0 ≤ reserved ≤ on_hand`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels {
    /// Units in the warehouse, reserved ones included.
    pub on_hand: i64,
    /// Units held for orders not yet shipped.
    pub reserved: i64,
}

impl Levels {
    /// Units that can still be reserved.
    pub fn available(self) -> i64 {
        self.on_hand - self.reserved
    }

    /// Whether the levels keep `0 ≤ reserved ≤ on_hand`.
    pub fn is_sane(self) -> bool {
        0 <= self.reserved && self.reserved <= self.on_hand
    }
}

/// A counted stock level (`PUT .../inventory/{sku}`): 0–[`OnHand::MAX`] units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct OnHand(i64);

/// Why a number is not a stock level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OnHandError {
    /// Negative or above [`OnHand::MAX`].
    #[error("must be an integer from 0 to 1000000000000")]
    OutOfRange,
}

impl OnHand {
    /// The most units one SKU may have on hand: far beyond any warehouse, and low enough that
    /// sums over the ledger and restocks can never overflow 64 bits.
    pub const MAX: i64 = 1_000_000_000_000;

    /// A level of `n` units.
    pub fn new(n: i64) -> Result<OnHand, OnHandError> {
        if (0..=Self::MAX).contains(&n) {
            Ok(OnHand(n))
        } else {
            Err(OnHandError::OutOfRange)
        }
    }

    /// The number of units.
    pub fn get(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn available_is_what_is_not_reserved() {
        let l = Levels {
            on_hand: 10,
            reserved: 4,
        };
        assert_eq!(l.available(), 6);
        assert!(l.is_sane());
        assert!(!Levels {
            on_hand: 3,
            reserved: 4
        }
        .is_sane());
        assert!(!Levels {
            on_hand: 3,
            reserved: -1
        }
        .is_sane());
    }

    #[test]
    fn on_hand_is_zero_to_a_trillion() {
        assert_eq!(OnHand::new(0).unwrap().get(), 0);
        assert!(OnHand::new(OnHand::MAX).is_ok());
        assert_eq!(OnHand::new(-1), Err(OnHandError::OutOfRange));
        assert_eq!(OnHand::new(OnHand::MAX + 1), Err(OnHandError::OutOfRange));
    }
}
