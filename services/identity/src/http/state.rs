//! `GET /admin/state`: how many accounts exist and the bus's tables, for consistency checks
//! after a chaos run (the `bazaar check` command reads it).

use axum::extract::State;
use bazaar_messaging::MessagingSummary;
use bazaar_runtime::{AdminUser, Json, Problem};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::state::AppState;

/// The answer of identity's `GET /admin/state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityState {
    /// `"identity"`.
    pub service: String,
    /// The event bus's tables; `null` when identity runs without a bus.
    pub messaging: Option<MessagingSummary>,
    /// How many accounts exist (the admin included).
    pub users: i64,
}

/// `GET /admin/state` (admin): the account count and the bus's tables, read in one snapshot.
pub(super) async fn state(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
) -> Result<Json<IdentityState>, Problem> {
    read(&state)
        .await
        .map(Json)
        .map_err(|e| Problem::internal(&e))
}

async fn read(state: &AppState) -> Result<IdentityState, sqlx::Error> {
    let mut tx = bazaar_messaging::read_snapshot(state.db()).await?;
    let messaging = match state.bus() {
        Some(bus) => Some(bus.state_summary(&mut tx).await?),
        None => None,
    };
    let users: i64 = sqlx::query("SELECT COUNT(*) FROM users")
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    tx.rollback().await?;
    Ok(IdentityState {
        service: crate::SERVICE.to_owned(),
        messaging,
        users,
    })
}
