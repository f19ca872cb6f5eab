//! `POST /admin/keys/rotate`.

use axum::extract::State;
use bazaar_runtime::{AdminUser, Json, Problem};

use crate::signing::KeyRotation;
use crate::state::AppState;

/// Rotates the signing key: `{"kid": new, "published": [kids]}`.
pub async fn rotate_key(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
) -> Result<Json<KeyRotation>, Problem> {
    let rotation = state.rotate_key().await?;
    tracing::info!(admin = %admin.sub, kid = %rotation.kid, "An admin rotated the signing key.");
    Ok(Json(rotation))
}
