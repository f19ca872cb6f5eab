//! `GET /admin/state`: every stock level with its ledger sums, and every reservation, for
//! consistency checks after a chaos run (the `bazaar check` command reads it).

use std::collections::BTreeMap;

use axum::extract::State;
use bazaar_messaging::{read_rows, MessagingSummary};
use bazaar_runtime::{AdminUser, Json, Problem};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::{domain::MovementKind, state::AppState, SERVICE};

/// The answer of inventory's `GET /admin/state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryState {
    /// `"inventory"`.
    pub service: String,
    /// The event bus's tables.
    pub messaging: MessagingSummary,
    /// Every SKU with a stock row or a ledger row, by SKU.
    pub stock: Vec<StockRecord>,
    /// Every reservation, by order id.
    pub reservations: Vec<ReservationRecord>,
}

/// A SKU's levels and the sums of its ledger. For a consistent SKU
/// `on_hand = adjustments + commits` and `reserved = reserves + releases + commits`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockRecord {
    /// The SKU.
    pub sku: String,
    /// Units in the warehouse (0 when the SKU has ledger rows but no stock row).
    pub on_hand: i64,
    /// Units held for orders.
    pub reserved: i64,
    /// Σ quantity of the `adjustment` movements (counts, restocks; signed).
    pub adjustments: i64,
    /// Σ quantity of the `commit` movements (negative: units that left).
    pub commits: i64,
    /// Σ quantity of the `reserve` movements (positive).
    pub reserves: i64,
    /// Σ quantity of the `release` movements (negative).
    pub releases: i64,
}

/// One order's reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationRecord {
    /// The order.
    pub order_id: String,
    /// `reserved`, `out_of_stock`, `released` or `committed`; only `reserved` holds stock.
    pub status: String,
    /// Why it was released (or refused).
    pub reason: String,
    /// Its lines, by SKU.
    pub lines: Vec<ReservationLineRecord>,
}

/// One line of a reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationLineRecord {
    /// The SKU.
    pub sku: String,
    /// Units held (or, for `out_of_stock`, asked for).
    pub quantity: i64,
    /// Whether this line lacked stock (`out_of_stock` reservations only).
    pub short: bool,
}

/// `GET /admin/state` (admin): the whole inventory state, read in one snapshot.
///
/// A reservation still holds stock only while its status is `reserved`
/// ([`crate::domain::ReservationStatus::holds_stock`]): for every SKU, `reserved` should equal the sum of
/// the lines of the `reserved` reservations. `out_of_stock` held nothing, `released` gave its
/// units back (a `released` reservation without lines is a tombstone: released before
/// anything was reserved), and `committed` units left the warehouse (`on_hand` went down).
pub(super) async fn state(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
) -> Result<Json<InventoryState>, Problem> {
    read(&state)
        .await
        .map(Json)
        .map_err(|e| Problem::internal(&e))
}

async fn read(state: &AppState) -> Result<InventoryState, sqlx::Error> {
    let mut tx = bazaar_messaging::read_snapshot(state.db()).await?;
    let messaging = state.bus().state_summary(&mut tx).await?;

    let mut stock: BTreeMap<String, StockRecord> = BTreeMap::new();
    let blank = |sku: &str| StockRecord {
        sku: sku.to_owned(),
        on_hand: 0,
        reserved: 0,
        adjustments: 0,
        commits: 0,
        reserves: 0,
        releases: 0,
    };
    let levels = read_rows(&mut tx, "SELECT sku, on_hand, reserved FROM stock", |r| {
        Ok((r.try_get::<String, _>(0)?, r.try_get(1)?, r.try_get(2)?))
    })
    .await?;
    for (sku, on_hand, reserved) in levels {
        let s = stock.entry(sku.clone()).or_insert_with(|| blank(&sku));
        s.on_hand = on_hand;
        s.reserved = reserved;
    }
    // `SUM` of a BIGINT is NUMERIC on PostgreSQL, which the `Any` driver cannot decode.
    let sums = read_rows(
        &mut tx,
        "SELECT sku, kind, CAST(SUM(quantity) AS BIGINT) FROM movements GROUP BY sku, kind",
        |r| {
            Ok((
                r.try_get::<String, _>(0)?,
                r.try_get::<String, _>(1)?,
                r.try_get::<i64, _>(2)?,
            ))
        },
    )
    .await?;
    for (sku, kind, sum) in sums {
        let s = stock.entry(sku.clone()).or_insert_with(|| blank(&sku));
        match MovementKind::parse(&kind) {
            Some(MovementKind::Adjustment) => s.adjustments = sum,
            Some(MovementKind::Commit) => s.commits = sum,
            Some(MovementKind::Reserve) => s.reserves = sum,
            Some(MovementKind::Release) => s.releases = sum,
            None => {
                tracing::warn!(sku = %sku, kind = %kind, "The ledger holds a movement of an unknown kind.")
            }
        }
    }

    let mut reservations: BTreeMap<String, ReservationRecord> = read_rows(
        &mut tx,
        "SELECT order_id, status, reason FROM reservations",
        |r| {
            let order_id: String = r.try_get(0)?;
            Ok((
                order_id.clone(),
                ReservationRecord {
                    order_id,
                    status: r.try_get(1)?,
                    reason: r.try_get(2)?,
                    lines: Vec::new(),
                },
            ))
        },
    )
    .await?
    .into_iter()
    .collect();
    let lines = read_rows(
        &mut tx,
        "SELECT order_id, sku, quantity, short FROM reservation_lines ORDER BY order_id, sku",
        |r| {
            Ok((
                r.try_get::<String, _>(0)?,
                ReservationLineRecord {
                    sku: r.try_get(1)?,
                    quantity: r.try_get(2)?,
                    short: r.try_get::<i64, _>(3)? != 0,
                },
            ))
        },
    )
    .await?;
    for (order_id, line) in lines {
        if let Some(r) = reservations.get_mut(&order_id) {
            r.lines.push(line);
        }
    }
    tx.rollback().await?;
    Ok(InventoryState {
        service: SERVICE.to_owned(),
        messaging,
        stock: stock.into_values().collect(),
        reservations: reservations.into_values().collect(),
    })
}
