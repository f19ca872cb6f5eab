//! The JSON shapes inventory answers with.

use bazaar_runtime::time::rfc3339_micros;
use serde::Serialize;

use crate::{
    domain::{Levels, Sku},
    store::ledger::{Ledger, Movement},
};

/// A SKU's stock levels.
#[derive(Debug, Clone, Serialize)]
pub struct LevelsView {
    /// The SKU.
    pub sku: String,
    /// Units in the warehouse, reserved ones included.
    pub on_hand: i64,
    /// Units held for orders not yet shipped.
    pub reserved: i64,
    /// `on_hand − reserved`.
    pub available: i64,
}

impl LevelsView {
    /// The view of `levels` of `sku`.
    pub fn new(sku: &Sku, levels: Levels) -> Self {
        LevelsView {
            sku: sku.as_str().to_owned(),
            on_hand: levels.on_hand,
            reserved: levels.reserved,
            available: levels.available(),
        }
    }
}

/// One ledger row.
#[derive(Debug, Clone, Serialize)]
pub struct MovementView {
    /// UUIDv7.
    pub id: String,
    /// `adjustment`, `reserve`, `release` or `commit`.
    pub kind: &'static str,
    /// The signed change: of `on_hand` for adjustment and commit, of `reserved` for reserve
    /// and release (a commit lowers `reserved` by the same amount).
    pub quantity: i64,
    /// The order, for reserve, release and commit.
    pub order_id: Option<String>,
    /// RFC 3339 UTC.
    pub at: String,
}

impl From<&Movement> for MovementView {
    fn from(m: &Movement) -> Self {
        MovementView {
            id: m.id.clone(),
            kind: m.kind.as_str(),
            quantity: m.quantity,
            order_id: m.order_id.clone(),
            at: rfc3339_micros(m.at_us),
        }
    }
}

/// A SKU's ledger and the check of its invariant.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerView {
    /// The SKU.
    pub sku: String,
    /// Current `on_hand` (0 when there is no stock record).
    pub on_hand: i64,
    /// Current `reserved`.
    pub reserved: i64,
    /// Σ adjustment + Σ commit.
    pub on_hand_from_movements: i64,
    /// Σ reserve + Σ release + Σ commit.
    pub reserved_from_movements: i64,
    /// Whether the levels equal the ledger's sums and `0 ≤ reserved ≤ on_hand`.
    pub consistent: bool,
    /// Every movement, oldest first.
    pub movements: Vec<MovementView>,
}

impl LedgerView {
    /// The view of `ledger` of `sku`.
    pub fn new(sku: &Sku, ledger: &Ledger) -> Self {
        let levels = ledger.levels.unwrap_or(Levels {
            on_hand: 0,
            reserved: 0,
        });
        LedgerView {
            sku: sku.as_str().to_owned(),
            on_hand: levels.on_hand,
            reserved: levels.reserved,
            on_hand_from_movements: ledger.on_hand_from_movements(),
            reserved_from_movements: ledger.reserved_from_movements(),
            consistent: ledger.is_consistent(),
            movements: ledger.movements.iter().map(MovementView::from).collect(),
        }
    }
}
