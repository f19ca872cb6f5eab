//! A shipment and its state machine.
//!
//! ```text
//! waiting ──claim granted──▶ claimed ──carrier took it──▶ dispatched
//!    │                          │    └──carrier refused──▶ failed
//!    └──claim refused──▶ not_claimed ◀──claim refused──┘
//! ```
//! `dispatched`, `failed` and `not_claimed` are final. A worker that died after the order
//! granted the claim leaves `waiting` or `claimed` behind; the next attempt claims again
//! (the order service grants a repeated claim) and goes on.

use std::fmt;

use uuid::Uuid;

use super::OrderId;

/// Where a shipment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShipmentStatus {
    /// Waiting for its handling time to pass, or for a retry of the claim.
    Waiting,
    /// The order service granted the claim; the carrier has not answered yet.
    Claimed,
    /// The carrier took the parcel.
    Dispatched,
    /// The carrier refused the parcel.
    Failed,
    /// The order service refused the claim (the order is being or was cancelled).
    NotClaimed,
}

/// A stored status that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown shipment status {0:?}")]
pub struct UnknownStatus(pub String);

/// A move the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a shipment cannot go from {from} to {to}")]
pub struct IllegalTransition {
    /// The current status.
    pub from: ShipmentStatus,
    /// The refused next status.
    pub to: ShipmentStatus,
}

impl ShipmentStatus {
    /// Every status, in the order of the diagram.
    pub const ALL: [ShipmentStatus; 5] = [
        ShipmentStatus::Waiting,
        ShipmentStatus::Claimed,
        ShipmentStatus::Dispatched,
        ShipmentStatus::Failed,
        ShipmentStatus::NotClaimed,
    ];

    /// The stable name stored in SQL and shown by the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            ShipmentStatus::Waiting => "waiting",
            ShipmentStatus::Claimed => "claimed",
            ShipmentStatus::Dispatched => "dispatched",
            ShipmentStatus::Failed => "failed",
            ShipmentStatus::NotClaimed => "not_claimed",
        }
    }

    /// The status named `name`.
    pub fn parse(name: &str) -> Result<ShipmentStatus, UnknownStatus> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| UnknownStatus(name.to_owned()))
    }

    /// Whether a worker still has something to do for the shipment.
    pub fn is_open(self) -> bool {
        matches!(self, ShipmentStatus::Waiting | ShipmentStatus::Claimed)
    }

    /// The status after a move to `to`, or why that move is illegal. Staying `claimed` is
    /// allowed: a retried worker claims again.
    pub fn transition(self, to: ShipmentStatus) -> Result<ShipmentStatus, IllegalTransition> {
        use ShipmentStatus::*;
        let ok = matches!(
            (self, to),
            (Waiting, Claimed | NotClaimed) | (Claimed, Claimed | Dispatched | Failed | NotClaimed)
        );
        if ok {
            Ok(to)
        } else {
            Err(IllegalTransition { from: self, to })
        }
    }
}

impl fmt::Display for ShipmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A shipment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipment {
    /// UUIDv7.
    pub id: Uuid,
    /// The order it ships (one shipment per order).
    pub order_id: OrderId,
    /// The order's owner.
    pub user_id: String,
    /// Where it is.
    pub status: ShipmentStatus,
    /// The destination's postal code (the carrier stand-in decides on it).
    pub postal_code: String,
    /// Set once dispatched.
    pub tracking_number: Option<String>,
    /// Why it failed or was not claimed.
    pub reason: Option<String>,
    /// The error of the last failed claim attempt, for operators.
    pub last_error: Option<String>,
    /// The W3C trace context of the confirmation, continued by the claim and the events.
    pub traceparent: Option<String>,
    /// When the handling time is over (µs).
    pub due_us: i64,
    /// Claim attempts so far.
    pub attempts: i64,
    /// When a worker may next try (µs).
    pub next_attempt_us: i64,
    /// When it was created (µs).
    pub created_us: i64,
    /// When it last changed (µs).
    pub updated_us: i64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_round_trip() {
        for s in ShipmentStatus::ALL {
            assert_eq!(ShipmentStatus::parse(s.as_str()), Ok(s));
        }
        assert!(ShipmentStatus::parse("lost").is_err());
    }

    #[test]
    fn the_happy_path_and_the_refusals_are_allowed() {
        use ShipmentStatus::*;
        assert_eq!(Waiting.transition(Claimed), Ok(Claimed));
        assert_eq!(Claimed.transition(Dispatched), Ok(Dispatched));
        assert_eq!(Claimed.transition(Failed), Ok(Failed));
        assert_eq!(Waiting.transition(NotClaimed), Ok(NotClaimed));
        assert_eq!(Claimed.transition(Claimed), Ok(Claimed));
        assert!(Waiting.transition(Dispatched).is_err());
        assert!(Dispatched.transition(Failed).is_err());
        assert!(NotClaimed.transition(Claimed).is_err());
    }

    fn status() -> impl Strategy<Value = ShipmentStatus> {
        proptest::sample::select(ShipmentStatus::ALL.to_vec())
    }

    proptest! {
        /// Whatever sequence of moves is tried, a final status is never left and a parcel is
        /// never dispatched or failed without a claim first.
        #[test]
        fn random_walks_respect_the_rules(moves in proptest::collection::vec(status(), 0..30)) {
            let mut current = ShipmentStatus::Waiting;
            let mut claimed = false;
            for to in moves {
                match current.transition(to) {
                    Ok(next) => {
                        prop_assert!(current.is_open(), "left final {current}");
                        if matches!(next, ShipmentStatus::Dispatched | ShipmentStatus::Failed) {
                            prop_assert!(claimed);
                        }
                        claimed |= next == ShipmentStatus::Claimed;
                        current = next;
                    }
                    Err(e) => prop_assert_eq!(e, IllegalTransition { from: current, to }),
                }
            }
        }
    }
}
