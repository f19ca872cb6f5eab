//! The carrier stand-in: it takes every parcel except those for postal code `00000`.

use rand::Rng;

/// The postal code the simulated carrier refuses (a test-mode trigger, see API.md).
pub const REJECTED_POSTAL_CODE: &str = "00000";

/// The reason recorded and published when the carrier refuses a parcel.
pub const REJECTED_REASON: &str = "carrier_rejected_postal_code";

/// What the carrier said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CarrierDecision {
    /// The parcel was taken; this is its tracking number.
    Dispatched {
        /// `BZ` and 12 upper-case letters or digits.
        tracking_number: String,
    },
    /// The parcel was refused.
    Rejected {
        /// Why (a stable code).
        reason: &'static str,
    },
}

/// Books a parcel to `postal_code` with the simulated carrier.
pub fn book(postal_code: &str, rng: &mut impl Rng) -> CarrierDecision {
    if postal_code.trim() == REJECTED_POSTAL_CODE {
        CarrierDecision::Rejected {
            reason: REJECTED_REASON,
        }
    } else {
        CarrierDecision::Dispatched {
            tracking_number: tracking_number(rng),
        }
    }
}

/// A fresh tracking number: `BZ` followed by 12 characters from `0-9A-Z`.
pub fn tracking_number(rng: &mut impl Rng) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut out = String::with_capacity(14);
    out.push_str("BZ");
    for _ in 0..12 {
        out.push(char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn the_carrier_refuses_postal_code_00000_only() {
        let mut rng = StdRng::seed_from_u64(3);
        assert_eq!(
            book("00000", &mut rng),
            CarrierDecision::Rejected {
                reason: "carrier_rejected_postal_code"
            }
        );
        for code in ["10115", "000000", "0000", "SW1A 1AA"] {
            assert!(
                matches!(book(code, &mut rng), CarrierDecision::Dispatched { .. }),
                "{code}"
            );
        }
    }

    #[test]
    fn tracking_numbers_have_the_documented_shape_and_differ() {
        let mut rng = StdRng::seed_from_u64(5);
        let a = tracking_number(&mut rng);
        let b = tracking_number(&mut rng);
        assert_ne!(a, b);
        for t in [a, b] {
            assert_eq!(t.len(), 14, "{t}");
            assert!(t.starts_with("BZ"), "{t}");
            assert!(
                t[2..]
                    .bytes()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()),
                "{t}"
            );
        }
    }
}
