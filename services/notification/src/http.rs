//! Notification's HTTP API: the caller's notifications, the whole state for consistency
//! checks, and the bus's feed, dead-letter and messaging routes.

mod notifications;
mod state;
mod view;

use axum::{
    routing::{get, post},
    Router,
};
use bazaar_messaging::Bus;
use bazaar_runtime::ServiceStack;

pub use state::{NotificationRecord, NotificationState};
pub use view::{NotificationPage, NotificationView};

use crate::state::AppState;

/// Notification's routes, with `bus`'s routes merged in, inside the standard service stack.
/// The gateway forwards `/api/v1/me/notifications…` unchanged; `GET /admin/state` (admin)
/// is the service's own.
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
        .route("/api/v1/me/notifications", get(notifications::list))
        .route(
            "/api/v1/me/notifications/{id}/read",
            post(notifications::mark_read),
        )
        .with_state(state)
        .merge(whole)
        .merge(bus.routes());
    stack.wrap(routes)
}
