//! `GET /admin/state`: who was told what about which order, for consistency checks after a
//! chaos run (the `bazaar check` command reads it).

use axum::extract::State;
use bazaar_messaging::{read_rows, Bus, MessagingSummary};
use bazaar_runtime::{AdminUser, Json, Problem};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::state::AppState;

/// The answer of notification's `GET /admin/state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationState {
    /// `"notification"`.
    pub service: String,
    /// The event bus's tables.
    pub messaging: MessagingSummary,
    /// Every notification, oldest first (without its message text).
    pub notifications: Vec<NotificationRecord>,
}

/// One notification as stored, without its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRecord {
    /// The order it is about; `null` for a notification about no order (a welcome).
    pub order_id: Option<String>,
    /// Whom it was for.
    pub user_id: String,
    /// What it says, e.g. `welcome`, `order_confirmed`.
    pub kind: String,
}

/// What the state handler needs.
#[derive(Clone)]
pub(super) struct StateDeps {
    pub(super) app: AppState,
    pub(super) bus: Bus,
}

/// `GET /admin/state` (admin): every notification and the bus's tables, read in one snapshot.
pub(super) async fn state(
    State(deps): State<StateDeps>,
    AdminUser(_): AdminUser,
) -> Result<Json<NotificationState>, Problem> {
    read(&deps)
        .await
        .map(Json)
        .map_err(|e| Problem::internal(&e))
}

async fn read(deps: &StateDeps) -> Result<NotificationState, sqlx::Error> {
    let mut tx = bazaar_messaging::read_snapshot(deps.app.db()).await?;
    let messaging = deps.bus.state_summary(&mut tx).await?;
    let notifications = read_rows(
        &mut tx,
        "SELECT order_id, user_id, kind FROM notifications ORDER BY id",
        |r| {
            Ok(NotificationRecord {
                order_id: r.try_get(0)?,
                user_id: r.try_get(1)?,
                kind: r.try_get(2)?,
            })
        },
    )
    .await?;
    tx.rollback().await?;
    Ok(NotificationState {
        service: crate::SERVICE.to_owned(),
        messaging,
        notifications,
    })
}
