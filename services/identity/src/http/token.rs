//! `POST /api/v1/auth/token`: email and password in, access token out.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use bazaar_runtime::{Json, Problem, ProblemKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fields;
use crate::state::{AppState, LoginError};

/// The detail of every refused login, whatever was wrong.
pub const WRONG_CREDENTIALS: &str = "The email or password is wrong.";

/// The body of `POST /api/v1/auth/token`.
#[derive(Default, Deserialize)]
pub struct TokenRequest {
    email: Option<Value>,
    password: Option<Value>,
}

/// The answer to a successful login (RFC 6749 §5.1 field names).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenResponse {
    /// The compact JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: i64,
}

impl From<LoginError> for Problem {
    fn from(err: LoginError) -> Problem {
        match err {
            // One body for an unknown email and a wrong password, and not `invalid_token`:
            // no token was involved.
            LoginError::WrongCredentials => {
                Problem::new(ProblemKind::Unauthorized, WRONG_CREDENTIALS)
            }
            LoginError::Unexpected(e) => e.into(),
        }
    }
}

/// Issues an access token for valid credentials.
pub async fn issue(
    State(state): State<AppState>,
    Json(body): Json<TokenRequest>,
) -> Result<impl IntoResponse, Problem> {
    let mut errors = Vec::new();
    let email = fields::string(body.email, "/email", &mut errors);
    let password = fields::string(body.password, "/password", &mut errors);
    let (Some(email), Some(password)) = (email, password) else {
        return Err(Problem::validation(errors));
    };
    let token = state.issue_token(&email, password).await?;
    Ok((
        // A token must not be kept by a cache along the way (RFC 6749 §5.1).
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(TokenResponse {
            access_token: token.token,
            token_type: "Bearer".into(),
            expires_in: token.expires_in,
        }),
    ))
}
