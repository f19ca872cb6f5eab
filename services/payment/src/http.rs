//! The payment service's REST port: the admin view of payments, the breakers, the event feed
//! and dead letters, inside the standard service stack.

mod admin;
mod state;

use axum::{routing::get, Router};
use bazaar_messaging::Bus;
use bazaar_runtime::{Health, ServiceStack};
use bazaar_store::Db;

pub use admin::{PaymentItem, PaymentPage, PaymentsAnswer};
pub use state::{PaymentRecord, PaymentState, RefundRequestRecord};

use crate::SERVICE;

/// What the admin handlers share.
#[derive(Clone)]
pub struct AdminState {
    db: Db,
    bus: Bus,
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("db", &self.db.url_redacted())
            .finish()
    }
}

/// The payment service's routes inside the standard stack: `GET /admin/payments` (also at
/// its public path `/api/v1/admin/payments`, which the gateway rewrites to the former),
/// `GET /admin/state` (everything, for consistency checks), `GET /admin/breakers`, and the
/// bus's feed, dead-letter and messaging routes.
pub fn router(
    db: Db,
    bus: &Bus,
    health: Health,
    verifier: std::sync::Arc<bazaar_auth::Verifier>,
) -> Router {
    let stack = ServiceStack::new(SERVICE, health).with_verifier(verifier);
    let admin = Router::new()
        .route("/admin/payments", get(admin::payments))
        .route("/api/v1/admin/payments", get(admin::payments))
        .route("/admin/state", get(state::state))
        .with_state(AdminState {
            db,
            bus: bus.clone(),
        });
    stack.wrap(
        admin
            .merge(bazaar_resilience::admin_routes())
            .merge(bus.routes()),
    )
}
