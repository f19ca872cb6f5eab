//! Order, payment and shipment statuses, with the order's state machine.

use std::fmt;

/// Where an order is in its life.
///
/// `pending` → `confirmed` | `payment_pending` | `rejected` | `cancelled`;
/// `payment_pending` → `confirmed` | `rejected` | `cancelled`;
/// `confirmed` → `shipped` | `cancelled`. `rejected`, `cancelled`, `shipped` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// Accepted; the saga is reserving stock and charging.
    Pending,
    /// The payment provider is unavailable; the charge is retried until a deadline.
    PaymentPending,
    /// Stock held and payment captured; ready to ship.
    Confirmed,
    /// Could not be placed (final).
    Rejected,
    /// Cancelled and compensated (final).
    Cancelled,
    /// Left the warehouse (final).
    Shipped,
}

/// An illegal status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an order cannot go from {from} to {to}")]
pub struct TransitionError {
    /// The current status.
    pub from: OrderStatus,
    /// The refused next status.
    pub to: OrderStatus,
}

impl OrderStatus {
    /// Every status.
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::Pending,
        OrderStatus::PaymentPending,
        OrderStatus::Confirmed,
        OrderStatus::Rejected,
        OrderStatus::Cancelled,
        OrderStatus::Shipped,
    ];

    /// The stable name stored and shown.
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::PaymentPending => "payment_pending",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Shipped => "shipped",
        }
    }

    /// The status named `s`.
    pub fn parse(s: &str) -> Option<OrderStatus> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether nothing can follow this status.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            OrderStatus::Rejected | OrderStatus::Cancelled | OrderStatus::Shipped
        )
    }

    /// Whether the placement has an outcome a client waits for (`Prefer: wait`).
    pub const fn is_placement_outcome(self) -> bool {
        !matches!(self, OrderStatus::Pending | OrderStatus::Shipped)
    }

    /// Whether a customer may still ask to cancel (shipping's claim is checked separately).
    pub const fn is_cancellable(self) -> bool {
        matches!(
            self,
            OrderStatus::Pending | OrderStatus::PaymentPending | OrderStatus::Confirmed
        )
    }

    /// A rank that grows along every legal path: a read model applying events out of order
    /// keeps the status of the higher rank.
    pub const fn rank(self) -> i64 {
        match self {
            OrderStatus::Pending => 0,
            OrderStatus::PaymentPending => 1,
            OrderStatus::Confirmed => 2,
            OrderStatus::Rejected | OrderStatus::Cancelled | OrderStatus::Shipped => 3,
        }
    }

    /// The statuses an order may be in just before `to`.
    pub const fn sources(to: OrderStatus) -> &'static [OrderStatus] {
        match to {
            OrderStatus::Pending => &[],
            OrderStatus::PaymentPending => &[OrderStatus::Pending],
            OrderStatus::Confirmed | OrderStatus::Rejected => {
                &[OrderStatus::Pending, OrderStatus::PaymentPending]
            }
            OrderStatus::Cancelled => &[
                OrderStatus::Pending,
                OrderStatus::PaymentPending,
                OrderStatus::Confirmed,
            ],
            OrderStatus::Shipped => &[OrderStatus::Confirmed],
        }
    }

    /// The status after a move to `to`, or why that move is illegal.
    pub fn transition(self, to: OrderStatus) -> Result<OrderStatus, TransitionError> {
        if Self::sources(to).contains(&self) {
            Ok(to)
        } else {
            Err(TransitionError { from: self, to })
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an order was rejected or cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusReason {
    /// Inventory could not hold every line.
    OutOfStock,
    /// The card was declined.
    PaymentDeclined,
    /// The payment provider stayed unavailable past the deadline.
    PaymentUnavailable,
    /// The carrier refused the parcel.
    ShipmentFailed,
    /// The customer cancelled.
    CustomerCancelled,
    /// An operator aborted a saga that could not finish.
    OperatorAborted,
}

impl StatusReason {
    /// Every reason.
    pub const ALL: [StatusReason; 6] = [
        StatusReason::OutOfStock,
        StatusReason::PaymentDeclined,
        StatusReason::PaymentUnavailable,
        StatusReason::ShipmentFailed,
        StatusReason::CustomerCancelled,
        StatusReason::OperatorAborted,
    ];

    /// The stable name stored and shown.
    pub const fn as_str(self) -> &'static str {
        match self {
            StatusReason::OutOfStock => "out_of_stock",
            StatusReason::PaymentDeclined => "payment_declined",
            StatusReason::PaymentUnavailable => "payment_unavailable",
            StatusReason::ShipmentFailed => "shipment_failed",
            StatusReason::CustomerCancelled => "customer_cancelled",
            StatusReason::OperatorAborted => "operator_aborted",
        }
    }

    /// The reason named `s`.
    pub fn parse(s: &str) -> Option<StatusReason> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl fmt::Display for StatusReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is known of an order's payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// Not charged (yet).
    None,
    /// The provider was unavailable or the outcome is not known yet.
    Pending,
    /// Charged.
    Captured,
    /// Declined by the provider.
    Declined,
    /// Refunded.
    Refunded,
}

impl PaymentStatus {
    /// Every payment status.
    pub const ALL: [PaymentStatus; 5] = [
        PaymentStatus::None,
        PaymentStatus::Pending,
        PaymentStatus::Captured,
        PaymentStatus::Declined,
        PaymentStatus::Refunded,
    ];

    /// The stable name stored and shown.
    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::None => "none",
            PaymentStatus::Pending => "pending",
            PaymentStatus::Captured => "captured",
            PaymentStatus::Declined => "declined",
            PaymentStatus::Refunded => "refunded",
        }
    }

    /// The payment status named `s`.
    pub fn parse(s: &str) -> Option<PaymentStatus> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// A rank that grows along every real payment's life; updates from events and from the
    /// saga only ever raise it, so a late `captured` never hides a `refunded`.
    pub const fn rank(self) -> i64 {
        match self {
            PaymentStatus::None => 0,
            PaymentStatus::Pending => 1,
            PaymentStatus::Captured | PaymentStatus::Declined => 2,
            PaymentStatus::Refunded => 3,
        }
    }

    /// The SQL expression of [`PaymentStatus::rank`] over `column`.
    pub fn rank_sql(column: &str) -> String {
        format!(
            "(CASE {column} WHEN 'pending' THEN 1 WHEN 'captured' THEN 2 WHEN 'declined' THEN 2 \
             WHEN 'refunded' THEN 3 ELSE 0 END)"
        )
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is known of an order's shipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShipmentStatus {
    /// Not shipped (yet).
    None,
    /// The carrier took the parcel.
    Dispatched,
    /// The carrier refused the parcel.
    Failed,
}

impl ShipmentStatus {
    /// The stable name stored and shown.
    pub const fn as_str(self) -> &'static str {
        match self {
            ShipmentStatus::None => "none",
            ShipmentStatus::Dispatched => "dispatched",
            ShipmentStatus::Failed => "failed",
        }
    }

    /// The shipment status named `s`.
    pub fn parse(s: &str) -> Option<ShipmentStatus> {
        [
            ShipmentStatus::None,
            ShipmentStatus::Dispatched,
            ShipmentStatus::Failed,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

impl fmt::Display for ShipmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_round_trip() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        for r in StatusReason::ALL {
            assert_eq!(StatusReason::parse(r.as_str()), Some(r));
        }
        for p in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(p.as_str()), Some(p));
        }
        assert_eq!(OrderStatus::parse("PENDING"), None);
    }

    #[test]
    fn the_documented_transitions_are_the_legal_ones() {
        use OrderStatus::*;
        let legal = [
            (Pending, Confirmed),
            (Pending, PaymentPending),
            (Pending, Rejected),
            (Pending, Cancelled),
            (PaymentPending, Confirmed),
            (PaymentPending, Rejected),
            (PaymentPending, Cancelled),
            (Confirmed, Shipped),
            (Confirmed, Cancelled),
        ];
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                assert_eq!(
                    from.transition(to).is_ok(),
                    legal.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn the_sql_rank_matches_the_rank() {
        let sql = PaymentStatus::rank_sql("x");
        for p in PaymentStatus::ALL {
            if p.rank() > 0 {
                assert!(
                    sql.contains(&format!("'{}' THEN {}", p.as_str(), p.rank())),
                    "{p}"
                );
            }
        }
    }

    proptest! {
        /// Walking random moves, only legal ones apply; final statuses never change and the
        /// rank only grows.
        #[test]
        fn random_walks_respect_the_state_machine(moves in proptest::collection::vec(0usize..6, 0..30)) {
            let mut status = OrderStatus::Pending;
            for m in moves {
                let to = OrderStatus::ALL[m];
                match status.transition(to) {
                    Ok(next) => {
                        prop_assert!(!status.is_final());
                        prop_assert!(next.rank() > status.rank());
                        status = next;
                    }
                    Err(e) => prop_assert_eq!(e.from, status),
                }
            }
        }
    }
}
