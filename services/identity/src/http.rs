//! The HTTP API of identity: routes, request bodies and their translation into commands.

mod admin;
mod fields;
mod jwks;
mod state;
mod token;
mod users;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

pub use state::IdentityState;
pub use token::TokenResponse;
pub use users::{RegisterRequest, UserResponse};

/// The routes of identity, without the service stack (so a test can `oneshot` them).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/users", post(users::register))
        .route("/api/v1/users/me", get(users::me))
        .route("/api/v1/users/{id}", get(users::by_id))
        .route("/api/v1/auth/token", post(token::issue))
        .route("/.well-known/jwks.json", get(jwks::jwks))
        .route("/admin/keys/rotate", post(admin::rotate_key))
        .route("/admin/state", get(state::state))
        .with_state(state)
}
