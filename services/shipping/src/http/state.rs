//! `GET /admin/state`: every shipment, for consistency checks after a chaos run (the
//! `bazaar check` command reads it).

use axum::extract::State;
use bazaar_messaging::{read_rows, Bus, MessagingSummary};
use bazaar_runtime::{AdminUser, Json, Problem};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::state::AppState;

/// The answer of shipping's `GET /admin/state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingState {
    /// `"shipping"`.
    pub service: String,
    /// The event bus's tables.
    pub messaging: MessagingSummary,
    /// Every shipment, by order id.
    pub shipments: Vec<ShipmentRecord>,
}

/// One shipment as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentRecord {
    /// The order.
    pub order_id: String,
    /// `waiting`, `claimed`, `dispatched`, `failed` or `not_claimed`.
    pub status: String,
    /// The carrier's number, once dispatched.
    pub tracking_number: Option<String>,
    /// Why it failed or was cancelled.
    pub reason: Option<String>,
    /// Attempts made by the dispatch worker.
    pub attempts: i64,
}

/// What the state handler needs.
#[derive(Clone)]
pub(super) struct StateDeps {
    pub(super) app: AppState,
    pub(super) bus: Bus,
}

/// `GET /admin/state` (admin): every shipment and the bus's tables, read in one snapshot.
pub(super) async fn state(
    State(deps): State<StateDeps>,
    AdminUser(_): AdminUser,
) -> Result<Json<ShippingState>, Problem> {
    read(&deps)
        .await
        .map(Json)
        .map_err(|e| Problem::internal(&e))
}

async fn read(deps: &StateDeps) -> Result<ShippingState, sqlx::Error> {
    let mut tx = bazaar_messaging::read_snapshot(deps.app.db()).await?;
    let messaging = deps.bus.state_summary(&mut tx).await?;
    let shipments = read_rows(
        &mut tx,
        "SELECT order_id, status, tracking_number, reason, attempts FROM shipments \
         ORDER BY order_id",
        |r| {
            Ok(ShipmentRecord {
                order_id: r.try_get(0)?,
                status: r.try_get(1)?,
                tracking_number: r.try_get(2)?,
                reason: r.try_get(3)?,
                attempts: r.try_get(4)?,
            })
        },
    )
    .await?;
    tx.rollback().await?;
    Ok(ShippingState {
        service: crate::SERVICE.to_owned(),
        messaging,
        shipments,
    })
}
