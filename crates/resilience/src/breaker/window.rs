//! The sliding time window of call outcomes a closed breaker judges by.

use std::time::Duration;

use tokio::time::Instant;

/// How many buckets a window is cut into: an outcome leaves the window between
/// `window * (BUCKETS - 1) / BUCKETS` and `window` after it was recorded.
pub const BUCKETS: usize = 10;

/// One recorded outcome, as the window counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sample {
    /// Succeeded in time.
    Fast,
    /// Succeeded, but took at least `slow_call_duration`.
    Slow,
    /// Failed.
    Failed,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which slice of time (since the window's epoch) these counts belong to.
    index: u64,
    calls: u32,
    failures: u32,
    slow: u32,
}

/// Counts inside the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub calls: u32,
    pub failures: u32,
    pub slow: u32,
}

impl Totals {
    pub fn failure_rate(&self) -> f64 {
        rate(self.failures, self.calls)
    }

    pub fn slow_rate(&self) -> f64 {
        rate(self.slow, self.calls)
    }
}

fn rate(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        f64::from(part) / f64::from(whole)
    }
}

/// A ring of [`BUCKETS`] buckets, each `window / BUCKETS` long. A bucket is reused (and
/// zeroed) when time comes round to it again, so the window slides without a timer and a
/// record or a read costs a few additions.
#[derive(Debug)]
pub(crate) struct Window {
    epoch: Instant,
    bucket_nanos: u128,
    buckets: [Bucket; BUCKETS],
}

impl Window {
    pub fn new(window: Duration, epoch: Instant) -> Window {
        Window {
            epoch,
            bucket_nanos: (window.as_nanos() / BUCKETS as u128).max(1),
            // Index 0 with zero counts is a valid empty bucket for slice 0.
            buckets: [Bucket::default(); BUCKETS],
        }
    }

    fn index(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(since / self.bucket_nanos).unwrap_or(u64::MAX)
    }

    pub fn record(&mut self, now: Instant, sample: Sample) {
        let index = self.index(now);
        let bucket = &mut self.buckets[(index % BUCKETS as u64) as usize];
        if bucket.index != index {
            *bucket = Bucket {
                index,
                ..Bucket::default()
            };
        }
        bucket.calls = bucket.calls.saturating_add(1);
        match sample {
            Sample::Fast => {}
            Sample::Slow => bucket.slow = bucket.slow.saturating_add(1),
            Sample::Failed => bucket.failures = bucket.failures.saturating_add(1),
        }
    }

    pub fn totals(&self, now: Instant) -> Totals {
        let current = self.index(now);
        let mut totals = Totals::default();
        for bucket in &self.buckets {
            // A bucket counts while it is one of the last BUCKETS slices (this one included).
            if bucket.index <= current && current - bucket.index < BUCKETS as u64 {
                totals.calls = totals.calls.saturating_add(bucket.calls);
                totals.failures = totals.failures.saturating_add(bucket.failures);
                totals.slow = totals.slow.saturating_add(bucket.slow);
            }
        }
        totals
    }

    pub fn reset(&mut self) {
        self.buckets = [Bucket::default(); BUCKETS];
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn outcomes_leave_the_window_after_it_has_passed() {
        let start = Instant::now();
        let mut w = Window::new(Duration::from_secs(10), start);
        w.record(start, Sample::Failed);
        w.record(start + Duration::from_millis(500), Sample::Slow);
        w.record(start + Duration::from_secs(5), Sample::Fast);
        let t = w.totals(start + Duration::from_secs(9));
        assert_eq!(
            t,
            Totals {
                calls: 3,
                failures: 1,
                slow: 1
            }
        );
        // Slice 0 has left the window at 10 s; the call at 5 s is still in it.
        let t = w.totals(start + Duration::from_secs(10));
        assert_eq!(
            t,
            Totals {
                calls: 1,
                failures: 0,
                slow: 0
            }
        );
        assert_eq!(w.totals(start + Duration::from_secs(15)).calls, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reused_bucket_starts_from_zero() {
        let start = Instant::now();
        let mut w = Window::new(Duration::from_secs(10), start);
        w.record(start, Sample::Failed);
        w.record(start + Duration::from_secs(10), Sample::Fast);
        let t = w.totals(start + Duration::from_secs(10));
        assert_eq!(
            t,
            Totals {
                calls: 1,
                failures: 0,
                slow: 0
            }
        );
    }
}
