//! The steps of an order's saga, its status, and the backoff between attempts.

use std::{fmt, time::Duration};

use super::StatusReason;

/// The step a saga runs next. Forward steps place the order; the others compensate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Hold stock for every line (inventory `Reserve`).
    Reserve,
    /// Charge the card (payment `Charge`).
    Charge,
    /// A charge ended without a known outcome: ask payment (`GetPayment`) before any retry.
    VerifyCharge,
    /// Mark the order confirmed.
    Confirm,
    /// Give the stock back and reject the order: the card was declined.
    RejectDeclined,
    /// Give the stock back, refund anything captured late, and reject the order: the payment
    /// provider stayed unavailable past the deadline.
    RejectUnavailable,
    /// A customer's cancel: give the stock back, refund, `cancelled(customer_cancelled)`.
    Compensate,
    /// An operator's abort: give the stock back, refund, `rejected(operator_aborted)`.
    Abort,
}

impl Step {
    /// Every step.
    pub const ALL: [Step; 8] = [
        Step::Reserve,
        Step::Charge,
        Step::VerifyCharge,
        Step::Confirm,
        Step::RejectDeclined,
        Step::RejectUnavailable,
        Step::Compensate,
        Step::Abort,
    ];

    /// The stable name stored and shown.
    pub const fn as_str(self) -> &'static str {
        match self {
            Step::Reserve => "reserve",
            Step::Charge => "charge",
            Step::VerifyCharge => "verify_charge",
            Step::Confirm => "confirm",
            Step::RejectDeclined => "reject_declined",
            Step::RejectUnavailable => "reject_unavailable",
            Step::Compensate => "compensate",
            Step::Abort => "abort",
        }
    }

    /// The step named `s`.
    pub fn parse(s: &str) -> Option<Step> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether the step moves the order towards `confirmed` (a cancel request pre-empts it).
    pub const fn is_forward(self) -> bool {
        matches!(
            self,
            Step::Reserve | Step::Charge | Step::VerifyCharge | Step::Confirm
        )
    }

    /// For the steps that end the order unsuccessfully: the reason the order ends with.
    pub const fn final_reason(self) -> Option<StatusReason> {
        match self {
            Step::RejectDeclined => Some(StatusReason::PaymentDeclined),
            Step::RejectUnavailable => Some(StatusReason::PaymentUnavailable),
            Step::Compensate => Some(StatusReason::CustomerCancelled),
            Step::Abort => Some(StatusReason::OperatorAborted),
            _ => None,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a saga still has work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SagaStatus {
    /// Has a step to run (at `next_attempt`).
    Running,
    /// Finished.
    Done,
    /// Gave up after too many failed attempts; waits for an operator.
    Stuck,
    /// Finished after an operator's abort.
    Aborted,
}

impl SagaStatus {
    /// Every status.
    pub const ALL: [SagaStatus; 4] = [
        SagaStatus::Running,
        SagaStatus::Done,
        SagaStatus::Stuck,
        SagaStatus::Aborted,
    ];

    /// The stable name stored and shown.
    pub const fn as_str(self) -> &'static str {
        match self {
            SagaStatus::Running => "running",
            SagaStatus::Done => "done",
            SagaStatus::Stuck => "stuck",
            SagaStatus::Aborted => "aborted",
        }
    }

    /// The status named `s`.
    pub fn parse(s: &str) -> Option<SagaStatus> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl fmt::Display for SagaStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The wait before attempt `attempt + 1` (`attempt` ≥ 1 failed so far): exponential from
/// `base`, capped at `max`, with "equal jitter" (half fixed, half random) so that many
/// sagas failing together do not retry in lockstep. `unit` is a random number in [0, 1).
pub fn backoff(attempt: u32, base: Duration, max: Duration, unit: f64) -> Duration {
    let exp = base.saturating_mul(2_u32.saturating_pow(attempt.saturating_sub(1).min(30)));
    let capped = exp.min(max);
    let half = capped / 2;
    half + half.mul_f64(unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_round_trip() {
        for s in Step::ALL {
            assert_eq!(Step::parse(s.as_str()), Some(s));
        }
        for s in SagaStatus::ALL {
            assert_eq!(SagaStatus::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn backoff_grows_then_caps() {
        let (b, m) = (Duration::from_millis(100), Duration::from_secs(5));
        assert_eq!(backoff(1, b, m, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(2, b, m, 1.0), Duration::from_millis(200));
        assert_eq!(backoff(3, b, m, 0.0), Duration::from_millis(200));
        assert_eq!(backoff(20, b, m, 1.0), m);
        assert_eq!(backoff(u32::MAX, b, m, 0.0), m / 2);
    }

    proptest! {
        #[test]
        fn backoff_stays_within_bounds(attempt in 0u32..100, unit in 0.0f64..1.0) {
            let (b, m) = (Duration::from_millis(100), Duration::from_secs(5));
            let d = backoff(attempt, b, m, unit);
            prop_assert!(d <= m);
            prop_assert!(d >= Duration::from_millis(50));
        }
    }
}
