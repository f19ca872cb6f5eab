//! When a failed claim is tried again: exponential backoff with jitter.

use std::time::Duration;

use rand::Rng;

/// The delay before the second attempt (before jitter).
pub const RETRY_BASE: Duration = Duration::from_millis(200);

/// The longest delay between two attempts (before jitter).
pub const RETRY_CAP: Duration = Duration::from_secs(30);

/// The delay after the `attempts`-th failed attempt (1 for the first failure): the base
/// doubled per attempt up to the cap, then "equal jitter" (a random point in its upper
/// half), so instances that failed together do not retry together, yet never retry at once.
pub fn retry_delay(attempts: u32, rng: &mut impl Rng) -> Duration {
    let exp = attempts.saturating_sub(1).min(16);
    let full = RETRY_BASE.saturating_mul(1_u32 << exp).min(RETRY_CAP);
    let half = full / 2;
    let jitter_ms = rng.gen_range(0..=u64::try_from(half.as_millis()).unwrap_or(u64::MAX));
    half + Duration::from_millis(jitter_ms)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn delays_grow_and_stop_at_the_cap() {
        let mut rng = StdRng::seed_from_u64(1);
        let d1 = retry_delay(1, &mut rng);
        assert!(d1 >= RETRY_BASE / 2 && d1 <= RETRY_BASE, "{d1:?}");
        let d3 = retry_delay(3, &mut rng);
        assert!(d3 >= RETRY_BASE * 2 && d3 <= RETRY_BASE * 4, "{d3:?}");
        let late = retry_delay(1000, &mut rng);
        assert!(late >= RETRY_CAP / 2 && late <= RETRY_CAP, "{late:?}");
    }

    #[test]
    fn jitter_spreads_the_delays() {
        let mut rng = StdRng::seed_from_u64(7);
        let delays: std::collections::HashSet<Duration> =
            (0..20).map(|_| retry_delay(5, &mut rng)).collect();
        assert!(delays.len() > 10, "{delays:?}");
    }

    proptest! {
        #[test]
        fn a_delay_is_never_zero_nor_above_the_cap(attempts in any::<u32>(), seed in any::<u64>()) {
            let d = retry_delay(attempts, &mut StdRng::seed_from_u64(seed));
            prop_assert!(d >= RETRY_BASE / 2);
            prop_assert!(d <= RETRY_CAP);
        }
    }
}
