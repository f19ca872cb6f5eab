//! The arrival schedule of the open model: scenario `i` is due at `i / rate` seconds after
//! the start, whatever happened to the ones before it.

use std::time::Duration;

/// A constant-rate schedule over a duration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    rate: f64,
    count: u64,
}

impl Schedule {
    /// `rate` arrivals per second (above 0) for `duration`: every `i` with `i / rate < duration`.
    pub fn new(rate: f64, duration: Duration) -> Schedule {
        let exact = rate * duration.as_secs_f64();
        // A hair below the product, so 0.1/s for 30 s is 3 arrivals, not 4 from rounding.
        let count = if exact.is_finite() && exact > 0.0 {
            (exact - 1e-9).ceil().max(0.0) as u64
        } else {
            0
        };
        Schedule { rate, count }
    }

    /// How many arrivals the schedule holds.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// When arrival `i` is due, from the start.
    pub fn at(&self, i: u64) -> Duration {
        Duration::from_secs_f64(i as f64 / self.rate)
    }

    /// Every arrival's offset, in order.
    #[cfg(test)]
    pub fn offsets(&self) -> impl Iterator<Item = Duration> + '_ {
        (0..self.count).map(|i| self.at(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_per_second_for_five_seconds_is_a_hundred_arrivals_50_ms_apart() {
        let s = Schedule::new(20.0, Duration::from_secs(5));
        assert_eq!(s.len(), 100);
        let offsets: Vec<Duration> = s.offsets().collect();
        assert_eq!(offsets[0], Duration::ZERO);
        assert_eq!(offsets[1], Duration::from_millis(50));
        assert_eq!(offsets[99], Duration::from_millis(4950));
        for w in offsets.windows(2) {
            let gap = w[1] - w[0];
            assert!(
                gap.abs_diff(Duration::from_millis(50)) < Duration::from_micros(1),
                "{gap:?}"
            );
        }
    }

    #[test]
    fn fractional_rates_and_durations_count_whole_arrivals_inside_the_window() {
        assert_eq!(Schedule::new(0.1, Duration::from_secs(30)).len(), 3);
        assert_eq!(Schedule::new(0.5, Duration::from_secs(3)).len(), 2);
        assert_eq!(Schedule::new(3.0, Duration::from_millis(1500)).len(), 5);
        assert_eq!(Schedule::new(1000.0, Duration::from_secs(60)).len(), 60_000);
        assert_eq!(Schedule::new(10.0, Duration::ZERO).len(), 0);
        let s = Schedule::new(3.0, Duration::from_millis(1500));
        assert!(s.at(4) < Duration::from_millis(1500));
        assert_eq!(s.at(3), Duration::from_secs(1));
    }
}
