//! Reservations: what an order holds, and the state machine that makes every call on it
//! idempotent.
//!
//! ```text
//!             Reserve (enough stock)          Commit
//!   (none) ───────────────────────▶ reserved ─────────▶ committed
//!     │  │  Reserve (short)            │ Release
//!     │  └──────────────▶ out_of_stock │
//!     │                        │ Release▼
//!     └────────── Release ────────────▶ released   (a tombstone when nothing was held)
//! ```
//!
//! `released` and `committed` are final: every later call answers with them and changes
//! nothing. A Reserve for an order that already has a record answers with that record.

use std::collections::BTreeMap;

use super::{Quantity, Sku, SkuError};

/// The most lines one Reserve may carry.
pub const MAX_LINES: usize = 100;

/// Where an order's reservation stands. The SQL stores [`ReservationStatus::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReservationStatus {
    /// The order's lines are held (`reserved` counts them).
    Reserved,
    /// A Reserve found too little stock for some line and held nothing; recorded so that a
    /// retried Reserve gives the same answer instead of holding stock for a rejected order.
    OutOfStock,
    /// Given back (or released before anything was held: a tombstone). Final.
    Released,
    /// Shipped: the units left the warehouse. Final.
    Committed,
}

/// What a call does to a reservation in a given state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Move to this state (and move stock if the order held some).
    To(ReservationStatus),
    /// Change nothing; answer with the current state.
    Stay,
}

impl ReservationStatus {
    /// The stable name stored in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "reserved",
            Self::OutOfStock => "out_of_stock",
            Self::Released => "released",
            Self::Committed => "committed",
        }
    }

    /// The status stored as `s`.
    pub fn parse(s: &str) -> Option<ReservationStatus> {
        Some(match s {
            "reserved" => Self::Reserved,
            "out_of_stock" => Self::OutOfStock,
            "released" => Self::Released,
            "committed" => Self::Committed,
            _ => return None,
        })
    }

    /// Whether the order holds stock in this state.
    pub const fn holds_stock(self) -> bool {
        matches!(self, Self::Reserved)
    }

    /// A Release: a held or refused reservation becomes `released`; final states stay.
    pub const fn release(self) -> Transition {
        match self {
            Self::Reserved | Self::OutOfStock => Transition::To(Self::Released),
            Self::Released | Self::Committed => Transition::Stay,
        }
    }

    /// A Commit: only a held reservation can ship; every other state stays.
    pub const fn commit(self) -> Transition {
        match self {
            Self::Reserved => Transition::To(Self::Committed),
            Self::OutOfStock | Self::Released | Self::Committed => Transition::Stay,
        }
    }
}

/// The lines of a Reserve, one per SKU (lines naming the same SKU are added up), in SKU
/// order: the order in which stock rows are locked, so concurrent reservations never
/// deadlock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveLines(BTreeMap<Sku, Quantity>);

/// Why the lines of a Reserve are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinesError {
    /// No lines.
    #[error("at least one line is required")]
    Empty,
    /// More than [`MAX_LINES`].
    #[error("at most 100 lines are allowed")]
    TooMany,
    /// A line's SKU is malformed.
    #[error("lines[{index}].sku {error}")]
    Sku {
        /// The line's position.
        index: usize,
        /// What is wrong with it.
        error: SkuError,
    },
    /// A line's quantity is outside 1–1,000,000 (or the lines of one SKU add up to more).
    #[error("lines[{index}].quantity must be an integer from 1 to 1000000")]
    Quantity {
        /// The line's position.
        index: usize,
    },
}

impl ReserveLines {
    /// Parses `(sku, quantity)` lines.
    pub fn parse<'a>(
        lines: impl IntoIterator<Item = (&'a str, i64)>,
    ) -> Result<ReserveLines, LinesError> {
        let mut merged: BTreeMap<Sku, Quantity> = BTreeMap::new();
        for (index, (sku, quantity)) in lines.into_iter().enumerate() {
            if index >= MAX_LINES {
                return Err(LinesError::TooMany);
            }
            let sku = Sku::parse(sku).map_err(|error| LinesError::Sku { index, error })?;
            let quantity = Quantity::new(quantity).map_err(|_| LinesError::Quantity { index })?;
            let total = match merged.get(&sku) {
                None => quantity,
                Some(q) => q
                    .checked_add(quantity)
                    .ok_or(LinesError::Quantity { index })?,
            };
            merged.insert(sku, total);
        }
        if merged.is_empty() {
            return Err(LinesError::Empty);
        }
        Ok(ReserveLines(merged))
    }

    /// The lines in SKU order.
    pub fn iter(&self) -> impl Iterator<Item = (&Sku, Quantity)> {
        self.0.iter().map(|(s, q)| (s, *q))
    }

    /// How many SKUs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true for parsed lines; here for completeness.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Why stock was released (`payment_declined`, `customer_cancelled`, `shipment_failed`, …):
/// trimmed, at most 100 characters without control characters; empty becomes `unspecified`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseReason(String);

/// Why a string is not a release reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseReasonError {
    /// Too long or containing control characters.
    #[error("reason must be at most 100 characters without control characters")]
    Invalid,
}

impl ReleaseReason {
    /// Parses a reason.
    pub fn parse(input: &str) -> Result<ReleaseReason, ReleaseReasonError> {
        let s = input.trim();
        if s.chars().count() > 100 || s.chars().any(char::is_control) {
            return Err(ReleaseReasonError::Invalid);
        }
        Ok(ReleaseReason(if s.is_empty() {
            "unspecified".to_owned()
        } else {
            s.to_owned()
        }))
    }

    /// The reason as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALL: [ReservationStatus; 4] = [
        ReservationStatus::Reserved,
        ReservationStatus::OutOfStock,
        ReservationStatus::Released,
        ReservationStatus::Committed,
    ];

    #[test]
    fn statuses_round_trip_through_their_stored_names() {
        for s in ALL {
            assert_eq!(ReservationStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(ReservationStatus::parse("RESERVED"), None);
    }

    #[test]
    fn release_and_commit_follow_the_diagram() {
        use ReservationStatus::*;
        assert_eq!(Reserved.release(), Transition::To(Released));
        assert_eq!(OutOfStock.release(), Transition::To(Released));
        assert_eq!(Released.release(), Transition::Stay);
        assert_eq!(Committed.release(), Transition::Stay);
        assert_eq!(Reserved.commit(), Transition::To(Committed));
        assert_eq!(OutOfStock.commit(), Transition::Stay);
        assert_eq!(Released.commit(), Transition::Stay);
        assert_eq!(Committed.commit(), Transition::Stay);
    }

    #[test]
    fn lines_are_merged_per_sku_and_sorted() {
        let lines = ReserveLines::parse([("b-2", 1), ("AAA", 2), ("B-2", 3)]).unwrap();
        let got: Vec<(String, i64)> = lines
            .iter()
            .map(|(s, q)| (s.as_str().to_owned(), q.get()))
            .collect();
        assert_eq!(got, [("AAA".to_owned(), 2), ("B-2".to_owned(), 4)]);
    }

    #[test]
    fn bad_lines_are_refused() {
        assert_eq!(ReserveLines::parse([]), Err(LinesError::Empty));
        assert_eq!(
            ReserveLines::parse([("AAA", 1), ("AAA", 0)]),
            Err(LinesError::Quantity { index: 1 })
        );
        assert_eq!(
            ReserveLines::parse([("AAA", -3)]),
            Err(LinesError::Quantity { index: 0 })
        );
        assert_eq!(
            ReserveLines::parse([("AAA", 600_000), ("AAA", 600_000)]),
            Err(LinesError::Quantity { index: 1 })
        );
        assert!(matches!(
            ReserveLines::parse([("A_B", 1)]),
            Err(LinesError::Sku { index: 0, .. })
        ));
        let many: Vec<(String, i64)> = (0..101).map(|i| (format!("SKU-{i}"), 1)).collect();
        assert_eq!(
            ReserveLines::parse(many.iter().map(|(s, q)| (s.as_str(), *q))),
            Err(LinesError::TooMany)
        );
    }

    #[test]
    fn reasons_are_trimmed_and_defaulted() {
        assert_eq!(
            ReleaseReason::parse(" payment_declined ").unwrap().as_str(),
            "payment_declined"
        );
        assert_eq!(ReleaseReason::parse("").unwrap().as_str(), "unspecified");
        assert!(ReleaseReason::parse("a\u{7}").is_err());
        assert!(ReleaseReason::parse(&"x".repeat(101)).is_err());
    }

    #[derive(Debug, Clone, Copy)]
    enum Call {
        Release,
        Commit,
    }

    proptest! {
        /// Once final, always final; and stock moves at most once per reservation.
        #[test]
        fn final_states_absorb_every_later_call(
            start in prop::sample::select(ALL.to_vec()),
            calls in prop::collection::vec(prop_oneof![Just(Call::Release), Just(Call::Commit)], 0..20),
        ) {
            let mut state = start;
            let mut stock_moves = 0;
            for call in calls {
                let t = match call {
                    Call::Release => state.release(),
                    Call::Commit => state.commit(),
                };
                if let Transition::To(next) = t {
                    prop_assert!(!matches!(state, ReservationStatus::Released | ReservationStatus::Committed));
                    if state.holds_stock() {
                        stock_moves += 1;
                    }
                    state = next;
                }
            }
            prop_assert!(stock_moves <= 1);
            prop_assert!(!(start != ReservationStatus::Reserved && stock_moves > 0));
        }
    }
}
