//! `POST /api/v1/users`, `GET /api/v1/users/me` and `GET /api/v1/users/{id}`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use bazaar_runtime::time::rfc3339_micros;
use bazaar_runtime::{AuthUser, FieldError, Json, Problem};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fields;
use crate::domain::{DisplayName, Email, NewUser, Password, User};
use crate::state::{AppState, RegisterError};

/// The body of `POST /api/v1/users`, as loose as JSON allows so that every bad field is
/// found, not only the first.
#[derive(Default, Deserialize)]
pub struct RegisterRequest {
    /// Must be a valid email address.
    pub email: Option<Value>,
    /// 8–128 characters.
    pub password: Option<Value>,
    /// 1–100 characters, no control characters.
    pub display_name: Option<Value>,
}

// Hand-written so the password cannot reach a log through `{:?}`.
impl std::fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("email", &self.email)
            .field("display_name", &self.display_name)
            .finish_non_exhaustive()
    }
}

impl TryFrom<RegisterRequest> for NewUser {
    type Error = Vec<FieldError>;

    fn try_from(body: RegisterRequest) -> Result<NewUser, Vec<FieldError>> {
        let mut errors = Vec::new();
        let email = fields::string(body.email, "/email", &mut errors).and_then(|s| {
            Email::parse(&s)
                .map_err(|e| errors.push(FieldError::new("/email", e.to_string())))
                .ok()
        });
        let password = fields::string(body.password, "/password", &mut errors).and_then(|s| {
            Password::parse(s)
                .map_err(|e| errors.push(FieldError::new("/password", e.to_string())))
                .ok()
        });
        let display_name = fields::string(body.display_name, "/display_name", &mut errors)
            .and_then(|s| {
                DisplayName::parse(&s)
                    .map_err(|e| errors.push(FieldError::new("/display_name", e.to_string())))
                    .ok()
            });
        match (email, password, display_name) {
            (Some(email), Some(password), Some(display_name)) if errors.is_empty() => Ok(NewUser {
                email,
                password,
                display_name,
            }),
            _ => Err(errors),
        }
    }
}

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserResponse {
    /// UUIDv7.
    pub id: String,
    /// Lower-cased.
    pub email: String,
    /// The name shown to people.
    pub display_name: String,
    /// RFC 3339 UTC.
    pub created_at: String,
}

impl From<&User> for UserResponse {
    fn from(user: &User) -> UserResponse {
        UserResponse {
            id: user.id.clone(),
            email: user.email.as_str().to_owned(),
            display_name: user.display_name.as_str().to_owned(),
            created_at: rfc3339_micros(user.created_at),
        }
    }
}

impl From<RegisterError> for Problem {
    fn from(err: RegisterError) -> Problem {
        match err {
            // Revealing that the email is taken is the documented trade-off of a unique
            // login name; the token endpoint never reveals it.
            RegisterError::EmailTaken => {
                Problem::conflict("An account with this email already exists.")
            }
            RegisterError::Unexpected(e) => e.into(),
        }
    }
}

/// Registers a customer: 201 with the profile and its `Location`.
pub async fn register(
    State(state): State<AppState>,
    Json(body): Json<RegisterRequest>,
) -> Result<impl IntoResponse, Problem> {
    let new = NewUser::try_from(body).map_err(Problem::validation)?;
    let user = state.register(new).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/users/{}", user.id))],
        Json(UserResponse::from(&user)),
    ))
}

/// The caller's profile; 404 when the account behind a still-valid token is gone.
pub async fn me(
    State(state): State<AppState>,
    AuthUser(claims): AuthUser,
) -> Result<Json<UserResponse>, Problem> {
    let user = state
        .user(&claims.sub)
        .await?
        .ok_or_else(Problem::not_found)?;
    Ok(Json(UserResponse::from(&user)))
}

/// One user, for its owner or an admin (the target of `Location`). Anyone else, and any id
/// that is not a UUID, gets the same 404 as an unknown id: ids are not an oracle.
pub async fn by_id(
    State(state): State<AppState>,
    AuthUser(claims): AuthUser,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<UserResponse>, Problem> {
    if uuid::Uuid::parse_str(&id).is_err() || (claims.sub != id && !claims.is_admin()) {
        return Err(Problem::not_found());
    }
    let user = state.user(&id).await?.ok_or_else(Problem::not_found)?;
    Ok(Json(UserResponse::from(&user)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> RegisterRequest {
        serde_json::from_value(v).unwrap()
    }

    fn pointers(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.pointer.as_str()).collect()
    }

    #[test]
    fn a_valid_body_becomes_a_normalised_command() {
        let new = NewUser::try_from(body(json!({
            "email": " Ada@Example.com ",
            "password": "correct horse",
            "display_name": " Ada ",
            "roles": ["admin"],
        })))
        .unwrap();
        assert_eq!(new.email.as_str(), "ada@example.com");
        assert_eq!(new.password.expose(), "correct horse");
        assert_eq!(new.display_name.as_str(), "Ada");
    }

    #[test]
    fn every_invalid_field_is_reported_with_its_pointer() {
        let errors = NewUser::try_from(body(json!({
            "email": "nope",
            "password": "short",
            "display_name": "",
        })))
        .unwrap_err();
        assert_eq!(pointers(&errors), ["/email", "/password", "/display_name"]);
    }

    #[test]
    fn missing_null_and_mistyped_fields_are_reported_too() {
        let errors =
            NewUser::try_from(body(json!({"email": null, "password": 12345678}))).unwrap_err();
        assert_eq!(pointers(&errors), ["/email", "/password", "/display_name"]);
        assert_eq!(errors[0].detail, "is required");
        assert_eq!(errors[1].detail, "must be a string");
    }

    #[test]
    fn no_error_and_no_debug_output_repeats_the_password() {
        let secret = "hunter2";
        let request = body(json!({"email": "x", "password": secret, "display_name": "x"}));
        assert!(!format!("{request:?}").contains(secret));
        let errors = NewUser::try_from(request).unwrap_err();
        assert!(!format!("{errors:?}").contains(secret));
    }
}
