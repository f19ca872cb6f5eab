//! The catalog's HTTP API: routes, request bodies and response views.

mod body;
mod products;
mod state;
mod view;

use axum::{routing::get, Router};
use bazaar_runtime::ServiceStack;

pub use body::{CreateProductBody, PatchProductBody};
pub use state::CatalogState;
pub use view::{PriceView, ProductPage, ProductView};

use crate::state::AppState;

/// The catalog's routes inside the standard service stack (token verification, problem
/// fallbacks, `/livez`, `/readyz`, `/metrics`). The gateway forwards `/api/v1/products…`
/// unchanged, so the paths here are the public ones; `GET /admin/state` (admin, for
/// consistency checks) is the service's own.
pub fn router(state: AppState) -> Router {
    let stack = ServiceStack::new("catalog", state.health().clone())
        .with_verifier(state.verifier().clone());
    let bus_routes = state.bus_routes();
    let mut routes = Router::new()
        .route(
            "/api/v1/products",
            get(products::list).post(products::create),
        )
        .route(
            "/api/v1/products/{id}",
            get(products::get_one).patch(products::update),
        )
        .route("/admin/state", get(state::state))
        .with_state(state);
    if let Some(bus) = bus_routes {
        routes = routes.merge(bus);
    }
    stack.wrap(routes)
}
