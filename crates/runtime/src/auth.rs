//! Who is calling: extractors for the verified claims of the request's bearer token.
//!
//! The [`crate::middleware`] stack verifies any `Authorization` header with the service's
//! [`bazaar_auth::Verifier`] before routing (so an invalid token is refused even on public
//! routes) and stores the claims in the request. These extractors only read them: no service
//! trusts an identity header set by someone else.

use axum::extract::FromRequestParts;
use bazaar_auth::Claims;
use http::request::Parts;

use crate::problem::Problem;

/// The authenticated caller. Rejects with 401 (`WWW-Authenticate: Bearer`) when no token came.
#[derive(Debug, Clone)]
pub struct AuthUser(pub Claims);

/// The authenticated caller, if any (public routes that personalise).
#[derive(Debug, Clone)]
pub struct MaybeAuthUser(pub Option<Claims>);

/// An authenticated caller with the `admin` role; 401 without a token, 403 without the role.
#[derive(Debug, Clone)]
pub struct AdminUser(pub Claims);

impl AuthUser {
    /// The user id (`sub`).
    pub fn user_id(&self) -> &str {
        &self.0.sub
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Claims>()
            .cloned()
            .map(AuthUser)
            .ok_or_else(Problem::missing_token)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for MaybeAuthUser {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(MaybeAuthUser(parts.extensions.get::<Claims>().cloned()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AdminUser {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let claims = parts
            .extensions
            .get::<Claims>()
            .cloned()
            .ok_or_else(Problem::missing_token)?;
        if claims.is_admin() {
            Ok(AdminUser(claims))
        } else {
            Err(Problem::forbidden())
        }
    }
}
