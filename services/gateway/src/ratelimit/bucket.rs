//! One token bucket: plain arithmetic over a clock reading in nanoseconds, so tests can drive
//! time by hand and the limiters only add storage around it.

use super::{Decision, Rate};

const NANOS_PER_SEC: f64 = 1e9;

/// A bucket's state. A bucket that has refilled to its burst is the same as no bucket, which
/// is what lets the limiters forget it ([`Bucket::is_full_at`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    tokens: f64,
    updated: u64,
    full_at: u64,
}

impl Bucket {
    /// A bucket nobody has drawn from yet.
    pub(crate) fn full(rate: Rate, now: u64) -> Bucket {
        Bucket {
            tokens: f64::from(rate.burst),
            updated: now,
            full_at: now,
        }
    }

    /// Whether the bucket will have refilled completely by `now`.
    pub(crate) fn is_full_at(&self, now: u64) -> bool {
        now >= self.full_at
    }

    /// Refills for the time since the last call, then takes one token if there is one.
    pub(crate) fn take(&mut self, rate: Rate, now: u64) -> Decision {
        let burst = f64::from(rate.burst);
        // A clock that went backwards (or a racing caller with an older reading) refills nothing.
        let elapsed = now.saturating_sub(self.updated) as f64 / NANOS_PER_SEC;
        let mut tokens = (self.tokens + elapsed * rate.per_second).min(burst);
        let allowed = tokens >= 1.0;
        if allowed {
            tokens -= 1.0;
        }
        self.tokens = tokens;
        self.updated = self.updated.max(now);
        let to_full = (burst - tokens) / rate.per_second;
        // Float-to-int `as` saturates, which is the behaviour wanted for absurdly slow rates.
        self.full_at = self
            .updated
            .saturating_add((to_full * NANOS_PER_SEC) as u64);
        let retry_after_secs = if allowed {
            0
        } else {
            ((1.0 - tokens) / rate.per_second).ceil().max(1.0) as u64
        };
        Decision {
            allowed,
            limit: rate.burst,
            remaining: tokens.floor() as u32,
            reset_secs: to_full.ceil() as u64,
            retry_after_secs,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn a_fresh_bucket_allows_the_burst_then_refuses() {
        let rate = Rate {
            per_second: 1.0,
            burst: 3,
        };
        let mut b = Bucket::full(rate, 0);
        let d: Vec<Decision> = (0..4).map(|_| b.take(rate, 0)).collect();
        assert!(d[..3].iter().all(|d| d.allowed));
        assert_eq!(
            d.iter().map(|d| d.remaining).collect::<Vec<_>>(),
            [2, 1, 0, 0]
        );
        assert_eq!(d[2].reset_secs, 3);
        assert!(!d[3].allowed);
        assert_eq!(d[3].retry_after_secs, 1);
        assert_eq!(d[3].limit, 3);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let rate = Rate {
            per_second: 0.25,
            burst: 1,
        };
        let mut b = Bucket::full(rate, 0);
        assert!(b.take(rate, 0).allowed);
        let refused = b.take(rate, SEC);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_secs, 3);
        assert!(b.take(rate, 4 * SEC).allowed);
    }

    #[test]
    fn a_drained_bucket_is_forgettable_once_refilled() {
        let rate = Rate {
            per_second: 10.0,
            burst: 10,
        };
        let mut b = Bucket::full(rate, 0);
        for _ in 0..10 {
            b.take(rate, 0);
        }
        assert!(!b.is_full_at(SEC / 2));
        assert!(b.is_full_at(SEC));
    }

    proptest! {
        /// Over any window, no more than `burst + rate × window` requests get through.
        #[test]
        fn never_allows_more_than_burst_plus_refill(
            per_second in 0.1f64..50.0,
            burst in 1u32..20,
            gaps in proptest::collection::vec(0u64..(SEC / 5), 1..150),
        ) {
            let rate = Rate { per_second, burst };
            let mut b = Bucket::full(rate, 0);
            let mut now = 0;
            let mut allowed_at = Vec::new();
            for gap in gaps {
                now += gap;
                let d = b.take(rate, now);
                prop_assert!(d.remaining <= burst);
                if d.allowed {
                    allowed_at.push(now);
                } else {
                    prop_assert!(d.retry_after_secs >= 1);
                }
            }
            for i in 0..allowed_at.len() {
                for j in i..allowed_at.len() {
                    let window = (allowed_at[j] - allowed_at[i]) as f64 / 1e9;
                    let count = (j - i + 1) as f64;
                    prop_assert!(count <= f64::from(burst) + per_second * window + 1e-6,
                        "{count} requests in {window}s");
                }
            }
        }

        /// After draining, the bucket gives back `rate × t` tokens after `t` seconds.
        #[test]
        fn refills_at_the_rate(per_second in 0.5f64..100.0, burst in 1u32..50, millis in 0u64..10_000) {
            let rate = Rate { per_second, burst };
            let mut b = Bucket::full(rate, 0);
            while b.take(rate, 0).allowed {}
            let later = millis * 1_000_000;
            let mut got = 0u32;
            while b.take(rate, later).allowed {
                got += 1;
            }
            let expected = (per_second * millis as f64 / 1000.0).min(f64::from(burst));
            prop_assert!((f64::from(got) - expected).abs() <= 1.0, "got {got}, expected about {expected}");
        }
    }
}
