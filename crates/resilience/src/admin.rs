//! `GET /admin/breakers`: every circuit breaker in this process.

use axum::{routing::get, Json, Router};
use bazaar_runtime::AdminUser;
use serde::Serialize;

use crate::breaker::{breakers, BreakerSnapshot};

/// The body of `GET /admin/breakers`.
#[derive(Debug, Serialize)]
pub struct BreakerList {
    /// One snapshot per breaker, sorted by name.
    pub items: Vec<BreakerSnapshot>,
}

/// `GET /admin/breakers` → `{"items": [snapshot…]}`, for admins only. Merge it into the
/// service's router inside its `ServiceStack` (which verifies the token).
pub fn admin_routes() -> Router {
    Router::new().route("/admin/breakers", get(list_breakers))
}

async fn list_breakers(_admin: AdminUser) -> Json<BreakerList> {
    Json(BreakerList { items: breakers() })
}
