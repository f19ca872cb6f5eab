//! The processor's HTTP API: `/v1/charges`, `/v1/refunds` (no token, like a provider's API
//! behind its own credentials) and `/admin/*` (admin token): behaviour, stats and the whole
//! state (`/admin/state`, for consistency checks).

mod admin;
mod charges;
mod faults;
mod refunds;
mod state;

use axum::{
    middleware::from_fn_with_state,
    routing::{get, post},
    Router,
};
use bazaar_runtime::ServiceStack;

pub use admin::{BehaviourBody, BehaviourView, StatsView};
pub use charges::{ChargeBody, ChargeView};
pub use refunds::{RefundBody, RefundView};
pub use state::{ChargeRecord, PspState, RefundRecord};

use crate::{state::AppState, SERVICE};

/// The processor's routes inside the standard service stack (token verification, problem
/// fallbacks, `/livez`, `/readyz`, `/metrics`). Injected faults apply to `/v1` only, so the
/// admin endpoints stay usable while the "provider" is down.
pub fn router(state: AppState) -> Router {
    let stack =
        ServiceStack::new(SERVICE, state.health().clone()).with_verifier(state.verifier().clone());
    let v1 = Router::new()
        .route("/v1/charges", post(charges::create))
        .route("/v1/charges/{key}", get(charges::get_one))
        .route("/v1/refunds", post(refunds::create))
        .route_layer(from_fn_with_state(state.clone(), faults::inject));
    let admin = Router::new()
        .route(
            "/admin/behaviour",
            get(admin::get_behaviour).put(admin::put_behaviour),
        )
        .route("/admin/stats", get(admin::stats))
        .route("/admin/state", get(state::state));
    stack.wrap(v1.merge(admin).with_state(state))
}
