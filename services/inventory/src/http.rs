//! Inventory's admin HTTP API: stock levels, counts, restocks and the ledger.

mod body;
mod ledger;
mod state;
mod stock;
mod view;

use axum::{
    routing::{get, post},
    Router,
};
use bazaar_runtime::ServiceStack;

pub use body::{RestockBody, StockCountBody};
pub use state::{InventoryState, ReservationLineRecord, ReservationRecord, StockRecord};
pub use view::{LedgerView, LevelsView, MovementView};

use crate::{state::AppState, SERVICE};

/// Inventory's routes and the bus's (`/internal/events`, `/admin/dead-letters…`) inside the
/// standard service stack (token verification, problem fallbacks, `/livez`, `/readyz`,
/// `/metrics`). The gateway forwards `/api/v1/inventory/…` unchanged, so the paths here are
/// the public ones; `/admin/ledger/{sku}` and `/admin/state` (everything, for consistency
/// checks) are the service's own. Every route but the feed needs an admin token.
pub fn router(state: AppState) -> Router {
    let stack =
        ServiceStack::new(SERVICE, state.health().clone()).with_verifier(state.verifier().clone());
    let bus_routes = state.bus().routes();
    let routes = Router::new()
        .route(
            "/api/v1/inventory/{sku}",
            get(stock::get_levels).put(stock::count),
        )
        .route("/api/v1/inventory/{sku}/restock", post(stock::restock))
        .route("/admin/ledger/{sku}", get(ledger::get_ledger))
        .route("/admin/state", get(state::state))
        .with_state(state)
        .merge(bus_routes);
    stack.wrap(routes)
}
