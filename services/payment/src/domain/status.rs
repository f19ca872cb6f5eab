//! The life of a payment: a state machine whose stable names the SQL stores.
//!
//! ```text
//! none ──attempted──▶ pending ──captured──▶ captured ──refunded──▶ refunded
//!                      │  ▲ attempted            
//!                      │  └─┘                     
//!                      └──declined──▶ declined
//! ```

/// Where a payment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// No charge was ever attempted (no row).
    None,
    /// Sent to the processor; the outcome is not known yet.
    Pending,
    /// The processor took the money.
    Captured,
    /// The processor refused the card (final).
    Declined,
    /// The capture was given back (final).
    Refunded,
}

/// What can happen to a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentEvent {
    /// A charge is (again) being sent to the processor.
    Attempted,
    /// The processor captured the charge.
    Captured,
    /// The processor declined the charge.
    Declined,
    /// The processor refunded the capture.
    Refunded,
}

/// An event that cannot happen in a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a payment that is {from:?} cannot be {event:?}")]
pub struct IllegalTransition {
    /// The status the payment was in.
    pub from: PaymentStatus,
    /// What was attempted.
    pub event: PaymentEvent,
}

impl PaymentStatus {
    /// Every status.
    pub const ALL: [PaymentStatus; 5] = [
        Self::None,
        Self::Pending,
        Self::Captured,
        Self::Declined,
        Self::Refunded,
    ];

    /// The stable name (`none`, `pending`, `captured`, `declined`, `refunded`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Pending => "pending",
            Self::Captured => "captured",
            Self::Declined => "declined",
            Self::Refunded => "refunded",
        }
    }

    /// The status named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the outcome of the charge is known (nothing more will be sent for it).
    pub fn is_settled(self) -> bool {
        matches!(self, Self::Captured | Self::Declined | Self::Refunded)
    }

    /// The status after `event`, or why it cannot happen now.
    pub fn apply(self, event: PaymentEvent) -> Result<PaymentStatus, IllegalTransition> {
        if event.allowed_from().contains(&self) {
            Ok(event.target())
        } else {
            Err(IllegalTransition { from: self, event })
        }
    }
}

impl PaymentEvent {
    /// The statuses in which this event may happen (the SQL's `WHERE status = …`).
    pub fn allowed_from(self) -> &'static [PaymentStatus] {
        match self {
            Self::Attempted => &[PaymentStatus::None, PaymentStatus::Pending],
            Self::Captured | Self::Declined => &[PaymentStatus::Pending],
            Self::Refunded => &[PaymentStatus::Captured],
        }
    }

    /// The status the payment is in afterwards.
    pub fn target(self) -> PaymentStatus {
        match self {
            Self::Attempted => PaymentStatus::Pending,
            Self::Captured => PaymentStatus::Captured,
            Self::Declined => PaymentStatus::Declined,
            Self::Refunded => PaymentStatus::Refunded,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn event() -> impl Strategy<Value = PaymentEvent> {
        prop_oneof![
            Just(PaymentEvent::Attempted),
            Just(PaymentEvent::Captured),
            Just(PaymentEvent::Declined),
            Just(PaymentEvent::Refunded),
        ]
    }

    #[test]
    fn names_round_trip() {
        for s in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(PaymentStatus::parse("lost"), None);
    }

    #[test]
    fn the_happy_path_and_its_refusals() {
        let s = PaymentStatus::None.apply(PaymentEvent::Attempted).unwrap();
        let s = s.apply(PaymentEvent::Attempted).unwrap();
        assert_eq!(s, PaymentStatus::Pending);
        let s = s.apply(PaymentEvent::Captured).unwrap();
        assert!(s.apply(PaymentEvent::Attempted).is_err());
        assert!(s.apply(PaymentEvent::Declined).is_err());
        let s = s.apply(PaymentEvent::Refunded).unwrap();
        assert_eq!(s, PaymentStatus::Refunded);
        assert!(PaymentStatus::Pending
            .apply(PaymentEvent::Refunded)
            .is_err());
        assert!(PaymentStatus::None.apply(PaymentEvent::Captured).is_err());
    }

    proptest! {
        /// Whatever happens, money is captured at most once, refunded only after a capture,
        /// and the final statuses never change.
        #[test]
        fn random_walks_keep_the_invariants(events in proptest::collection::vec(event(), 0..40)) {
            let mut status = PaymentStatus::None;
            let mut captures = 0;
            for e in events {
                match status.apply(e) {
                    Ok(next) => {
                        prop_assert!(!matches!(status, PaymentStatus::Declined | PaymentStatus::Refunded));
                        if next == PaymentStatus::Captured {
                            captures += 1;
                        }
                        if next == PaymentStatus::Refunded {
                            prop_assert_eq!(status, PaymentStatus::Captured);
                        }
                        if status.is_settled() {
                            prop_assert!(next.is_settled());
                        }
                        status = next;
                    }
                    Err(err) => prop_assert_eq!(err.from, status),
                }
            }
            prop_assert!(captures <= 1);
        }
    }
}
