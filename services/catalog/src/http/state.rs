//! `GET /admin/state`: how many products exist and the bus's tables, for consistency checks
//! after a chaos run (the `bazaar check` command reads it).

use axum::extract::State;
use bazaar_messaging::MessagingSummary;
use bazaar_runtime::{AdminUser, Json, Problem};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::state::AppState;

/// The answer of the catalog's `GET /admin/state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogState {
    /// `"catalog"`.
    pub service: String,
    /// The event bus's tables; `null` when the catalog runs without a bus.
    pub messaging: Option<MessagingSummary>,
    /// How many products exist.
    pub products: i64,
}

/// `GET /admin/state` (admin): the product count and the bus's tables, read in one snapshot.
pub(super) async fn state(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
) -> Result<Json<CatalogState>, Problem> {
    read(&state)
        .await
        .map(Json)
        .map_err(|e| Problem::internal(&e))
}

async fn read(state: &AppState) -> Result<CatalogState, sqlx::Error> {
    let mut tx = bazaar_messaging::read_snapshot(state.db()).await?;
    let messaging = match state.bus() {
        Some(bus) => Some(bus.state_summary(&mut tx).await?),
        None => None,
    };
    let products: i64 = sqlx::query("SELECT COUNT(*) FROM products")
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    tx.rollback().await?;
    Ok(CatalogState {
        service: crate::SERVICE.to_owned(),
        messaging,
        products,
    })
}
