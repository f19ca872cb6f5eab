//! Shipping's HTTP API: the admin view of shipments, the whole state for consistency checks,
//! and the bus's feed, dead-letter and messaging routes.

mod shipments;
mod state;
mod view;

use axum::{routing::get, Router};
use bazaar_messaging::Bus;
use bazaar_runtime::ServiceStack;

pub use state::{ShipmentRecord, ShippingState};
pub use view::{ShipmentPage, ShipmentView};

use crate::state::AppState;

/// Shipping's routes, with `bus`'s routes merged in, inside the standard service stack
/// (token verification, problem fallbacks, `/livez`, `/readyz`, `/metrics`). The admin list
/// answers on the public path and, like every operations route, on `/admin/…`;
/// `GET /admin/state` (admin) shows every shipment.
pub fn router(state: AppState, bus: &Bus) -> Router {
    let stack = ServiceStack::new(crate::SERVICE, state.health().clone())
        .with_verifier(state.verifier().clone());
    let whole = Router::new()
        .route("/admin/state", get(state::state))
        .with_state(state::StateDeps {
            app: state.clone(),
            bus: bus.clone(),
        });
    let routes = Router::new()
        .route("/api/v1/admin/shipments", get(shipments::list))
        .route("/admin/shipments", get(shipments::list))
        .with_state(state)
        .merge(whole)
        .merge(bus.routes());
    stack.wrap(routes)
}
