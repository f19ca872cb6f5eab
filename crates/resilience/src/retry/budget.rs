//! [`RetryBudget`]: caps retries at a share of recent requests.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

const SLOTS: usize = 10;

/// A budget that lets retries be at most `ratio` of the requests seen over the last
/// `window`, plus a floor of `min_per_sec` retries per second so a quiet client can still
/// retry. Shared (in an `Arc`) by every client of one dependency, it stops a retry storm:
/// when the dependency fails everything, load rises by `ratio`, not by `max_attempts`×.
#[derive(Debug)]
pub struct RetryBudget {
    window: Duration,
    min_per_sec: u32,
    ratio: f64,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    index: u64,
    deposits: u64,
    withdrawals: u64,
}

#[derive(Debug)]
struct State {
    epoch: Instant,
    slot_nanos: u128,
    slots: [Slot; SLOTS],
}

impl State {
    fn slot(&mut self, now: Instant) -> (u64, &mut Slot) {
        let index =
            u64::try_from(now.saturating_duration_since(self.epoch).as_nanos() / self.slot_nanos)
                .unwrap_or(u64::MAX);
        let slot = &mut self.slots[(index % SLOTS as u64) as usize];
        if slot.index != index {
            *slot = Slot {
                index,
                ..Slot::default()
            };
        }
        (index, slot)
    }

    fn totals(&self, current: u64) -> (u64, u64) {
        self.slots
            .iter()
            .filter(|s| s.index <= current && current - s.index < SLOTS as u64)
            .fold((0, 0), |(d, w), s| (d + s.deposits, w + s.withdrawals))
    }
}

impl Default for RetryBudget {
    /// 20 % of the requests over 10 s, at least 5 retries a second.
    fn default() -> Self {
        RetryBudget::new(Duration::from_secs(10), 5, 0.2)
    }
}

impl RetryBudget {
    /// Retries may be `ratio` (e.g. 0.2) of the requests over `window`, plus
    /// `min_per_sec` per second of the window.
    pub fn new(window: Duration, min_per_sec: u32, ratio: f64) -> Self {
        RetryBudget {
            window,
            min_per_sec,
            ratio: if ratio.is_finite() {
                ratio.max(0.0)
            } else {
                0.0
            },
            state: Mutex::new(State {
                epoch: Instant::now(),
                slot_nanos: (window.as_nanos() / SLOTS as u128).max(1),
                slots: [Slot::default(); SLOTS],
            }),
        }
    }

    /// Counts one original request (not a retry).
    pub fn deposit(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (_, slot) = state.slot(Instant::now());
        slot.deposits += 1;
    }

    /// Takes one retry from the budget; `false` (and nothing taken) when it is spent.
    pub fn withdraw(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (current, _) = state.slot(Instant::now());
        let (deposits, withdrawals) = state.totals(current);
        if (withdrawals + 1) as f64 <= self.allowance(deposits) {
            let (_, slot) = state.slot(Instant::now());
            slot.withdrawals += 1;
            true
        } else {
            false
        }
    }

    /// How many retries the budget would allow right now.
    pub fn remaining(&self) -> u64 {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (current, _) = state.slot(Instant::now());
        let (deposits, withdrawals) = state.totals(current);
        let allowance = self.allowance(deposits).floor();
        // Saturating float → int conversion; allowance is non-negative and finite.
        (allowance as u64).saturating_sub(withdrawals)
    }

    fn allowance(&self, deposits: u64) -> f64 {
        f64::from(self.min_per_sec) * self.window.as_secs_f64() + self.ratio * deposits as f64
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn allows_the_ratio_of_requests_then_refuses() {
        let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.2);
        assert!(
            !budget.withdraw(),
            "no requests yet, no floor: nothing to spend"
        );
        for _ in 0..10 {
            budget.deposit();
        }
        assert!(budget.withdraw());
        assert!(budget.withdraw());
        assert!(!budget.withdraw(), "20 % of 10 requests is 2 retries");
        assert_eq!(budget.remaining(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_floor_allows_min_per_sec_over_the_window() {
        let budget = RetryBudget::new(Duration::from_secs(2), 3, 0.0);
        let allowed = (0..100).take_while(|_| budget.withdraw()).count();
        assert_eq!(allowed, 6);
    }

    #[tokio::test(start_paused = true)]
    async fn spent_retries_come_back_when_they_leave_the_window() {
        let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.5);
        for _ in 0..4 {
            budget.deposit();
        }
        assert!(budget.withdraw());
        assert!(budget.withdraw());
        assert!(!budget.withdraw());
        tokio::time::advance(Duration::from_secs(11)).await;
        // The deposits left too: fresh requests earn fresh retries.
        assert!(!budget.withdraw());
        budget.deposit();
        budget.deposit();
        assert!(budget.withdraw());
    }
}
