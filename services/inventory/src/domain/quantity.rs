//! A number of units moved at once: a reservation line or a restock.

/// A positive number of units, 1–[`Quantity::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Quantity(i64);

/// Why a number is not a quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Zero, negative or above [`Quantity::MAX`].
    #[error("must be an integer from 1 to 1000000")]
    OutOfRange,
}

impl Quantity {
    /// The largest quantity one call may move (a restock or one reservation line).
    pub const MAX: i64 = 1_000_000;

    /// A quantity of `n` units.
    pub fn new(n: i64) -> Result<Quantity, QuantityError> {
        if (1..=Self::MAX).contains(&n) {
            Ok(Quantity(n))
        } else {
            Err(QuantityError::OutOfRange)
        }
    }

    /// The number of units.
    pub fn get(self) -> i64 {
        self.0
    }

    /// The sum of two quantities, if it is still a quantity (merging lines of one SKU).
    pub fn checked_add(self, other: Quantity) -> Option<Quantity> {
        Quantity::new(self.0.checked_add(other.0)?).ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_one_to_a_million() {
        assert_eq!(Quantity::new(1).unwrap().get(), 1);
        assert_eq!(Quantity::new(1_000_000).unwrap().get(), 1_000_000);
        for bad in [0, -1, 1_000_001, i64::MIN, i64::MAX] {
            assert_eq!(Quantity::new(bad), Err(QuantityError::OutOfRange), "{bad}");
        }
        let big = Quantity::new(600_000).unwrap();
        assert_eq!(big.checked_add(big), None);
        assert_eq!(
            Quantity::new(2)
                .unwrap()
                .checked_add(Quantity::new(3).unwrap()),
            Some(Quantity::new(5).unwrap())
        );
    }
}
