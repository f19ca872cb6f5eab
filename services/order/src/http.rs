//! The order service's HTTP API: routes, request parsing and response views.

mod admin;
mod orders;
mod prefer;
mod state;
mod view;

use axum::{
    routing::{get, post},
    Router,
};
use bazaar_runtime::ServiceStack;

pub use prefer::{parse_wait, MAX_WAIT_SECS};
pub use state::{IdempotencyKeyRecord, OrderItemRecord, OrderRecord, OrderState, SagaRecord};
pub use view::{
    AddressView, HistoryView, LineView, MoneyView, OrderPage, OrderSummary, OrderView, PaymentView,
    SagaLogView, SagaPage, SagaView, ShipmentSummary, ShipmentView,
};

use crate::state::AppState;

/// The order service's routes inside the standard service stack (token verification, problem
/// fallbacks, `/livez`, `/readyz`, `/metrics`), with the event bus's routes (its feed and
/// dead-letter admin). The saga admin routes answer both under `/api/v1/admin/…` (as the
/// gateway forwards them) and `/admin/…` (the service's own port); `GET /admin/state`
/// (admin, everything for consistency checks) only on the latter.
pub fn router(state: AppState) -> Router {
    let stack = ServiceStack::new(crate::SERVICE, state.health().clone())
        .with_verifier(state.verifier().clone());
    let bus = state.bus().routes();
    let mut routes = Router::new()
        .route("/api/v1/orders", get(orders::list).post(orders::place))
        .route("/api/v1/orders/{id}", get(orders::get_one))
        .route("/api/v1/orders/{id}/cancel", post(orders::cancel))
        .route("/admin/state", get(state::state));
    for prefix in ["/api/v1/admin", "/admin"] {
        routes = routes
            .route(&format!("{prefix}/sagas"), get(admin::list))
            .route(&format!("{prefix}/sagas/{{id}}/retry"), post(admin::retry))
            .route(&format!("{prefix}/sagas/{{id}}/abort"), post(admin::abort));
    }
    stack.wrap(routes.with_state(state).merge(bus))
}

/// A page size from a `limit` query parameter: 1–100, default 20.
pub(crate) fn parse_limit(raw: Option<&str>) -> Result<u8, bazaar_runtime::Problem> {
    match raw {
        None => Ok(20),
        Some(s) => match s.trim().parse::<u8>() {
            Ok(n) if (1..=100).contains(&n) => Ok(n),
            _ => Err(bazaar_runtime::Problem::malformed(
                "limit must be an integer from 1 to 100.",
            )),
        },
    }
}

/// A path id that is not a UUID names nothing: 404, like an unknown one.
pub(crate) fn path_id(
    path: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<String, bazaar_runtime::Problem> {
    path.ok()
        .and_then(|axum::extract::Path(s)| uuid::Uuid::try_parse(&s).ok())
        .map(|u| u.hyphenated().to_string())
        .ok_or_else(bazaar_runtime::Problem::not_found)
}
