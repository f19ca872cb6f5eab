//! The kinds of rows in the stock-movement ledger.

/// What a ledger row records. Its `quantity` is the signed change of `on_hand` for
/// [`MovementKind::Adjustment`] and [`MovementKind::Commit`], of `reserved` for
/// [`MovementKind::Reserve`] and [`MovementKind::Release`]; a commit also lowers `reserved`
/// by the same amount. Hence, for every SKU:
/// `on_hand = Σ adjustment + Σ commit` and `reserved = Σ reserve + Σ release + Σ commit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MovementKind {
    /// A stock count or a restock (positive or negative).
    Adjustment,
    /// Units held for an order (positive).
    Reserve,
    /// Units an order gave back (negative).
    Release,
    /// Units that left with a shipped order (negative).
    Commit,
}

impl MovementKind {
    /// The stable name stored in the ledger.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Adjustment => "adjustment",
            Self::Reserve => "reserve",
            Self::Release => "release",
            Self::Commit => "commit",
        }
    }

    /// The kind stored as `s`.
    pub fn parse(s: &str) -> Option<MovementKind> {
        Some(match s {
            "adjustment" => Self::Adjustment,
            "reserve" => Self::Reserve,
            "release" => Self::Release,
            "commit" => Self::Commit,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_stored_names() {
        for k in [
            MovementKind::Adjustment,
            MovementKind::Reserve,
            MovementKind::Release,
            MovementKind::Commit,
        ] {
            assert_eq!(MovementKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(MovementKind::parse("sale"), None);
    }
}
