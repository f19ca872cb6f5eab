//! `GET /.well-known/jwks.json`.

use axum::extract::State;
use bazaar_auth::JwkSet;
use bazaar_runtime::{Json, Problem};

use crate::state::AppState;

/// The public keys that verify access tokens: the current one and recently retired ones.
pub async fn jwks(State(state): State<AppState>) -> Result<Json<JwkSet>, Problem> {
    Ok(Json(state.jwks().await?))
}
