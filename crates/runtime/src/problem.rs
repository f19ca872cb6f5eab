//! RFC 9457 problem details: the one error body every Bazaar port answers with.
//!
//! A handler returns `Result<T, Problem>`. The body is filled with the request path
//! (`instance`) and trace id from the [`crate::context`] of the request being served, so
//! handlers never thread them through. Internal errors are logged with their full cause
//! chain and answered with a generic body: no SQL, host name or stack trace reaches a client.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use serde::Serialize;

use crate::context;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The closed set of problem types the public contract names (`urn:bazaar:problem:<slug>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// 400: the request could not be parsed (JSON, header, query parameter).
    MalformedRequest,
    /// 422: well-formed but breaks field rules; carries `errors` with JSON pointers.
    Validation,
    /// 401: no credentials, or credentials that are invalid.
    Unauthorized,
    /// 403: authenticated but lacking the role.
    Forbidden,
    /// 404: unknown resource, or one that belongs to someone else.
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 415.
    UnsupportedMediaType,
    /// 409: state conflict, duplicate unique value.
    Conflict,
    /// 422: an idempotency key reused with another body.
    IdempotencyKeyReused,
    /// 409: the first request with this idempotency key is still running.
    IdempotencyKeyInFlight,
    /// 413.
    PayloadTooLarge,
    /// 429, with `Retry-After`.
    RateLimited,
    /// 502 or 503: the upstream failed or none is available.
    UpstreamUnavailable,
    /// 504.
    UpstreamTimeout,
    /// 500: a bug or an outage; details are logged, never returned.
    Internal,
}

impl ProblemKind {
    /// The slug after `urn:bazaar:problem:`.
    pub const fn slug(self) -> &'static str {
        match self {
            Self::MalformedRequest => "malformed-request",
            Self::Validation => "validation",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::Conflict => "conflict",
            Self::IdempotencyKeyReused => "idempotency-key-reused",
            Self::IdempotencyKeyInFlight => "idempotency-key-in-flight",
            Self::PayloadTooLarge => "payload-too-large",
            Self::RateLimited => "rate-limited",
            Self::UpstreamUnavailable => "upstream-unavailable",
            Self::UpstreamTimeout => "upstream-timeout",
            Self::Internal => "internal",
        }
    }

    /// The status a problem of this kind has unless told otherwise.
    pub const fn default_status(self) -> StatusCode {
        match self {
            Self::MalformedRequest => StatusCode::BAD_REQUEST,
            Self::Validation | Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Conflict | Self::IdempotencyKeyInFlight => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::UpstreamUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short, human-readable summary of the problem type.
    pub const fn title(self) -> &'static str {
        match self {
            Self::MalformedRequest => "Malformed request",
            Self::Validation => "Validation failed",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::Conflict => "Conflict",
            Self::IdempotencyKeyReused => "Idempotency key reused",
            Self::IdempotencyKeyInFlight => "Idempotency key in flight",
            Self::PayloadTooLarge => "Payload too large",
            Self::RateLimited => "Too many requests",
            Self::UpstreamUnavailable => "Upstream unavailable",
            Self::UpstreamTimeout => "Upstream timeout",
            Self::Internal => "Internal error",
        }
    }
}

/// One invalid field of a request: where it is (RFC 6901 JSON pointer) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FieldError {
    /// JSON pointer into the request body, e.g. `/items/0/quantity`.
    pub pointer: String,
    /// What rule the value breaks.
    pub detail: String,
}

impl FieldError {
    /// A field error at `pointer`.
    pub fn new(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            detail: detail.into(),
        }
    }
}

/// An RFC 9457 problem, ready to be answered.
#[derive(Debug, Clone)]
pub struct Problem {
    kind: ProblemKind,
    status: StatusCode,
    detail: String,
    errors: Vec<FieldError>,
    retry_after: Option<u64>,
    www_authenticate: Option<&'static str>,
}

/// The serialized body.
#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    type_: String,
    title: &'static str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
}

impl Problem {
    /// A problem of `kind` with its default status.
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            status: kind.default_status(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
            www_authenticate: None,
        }
    }

    /// Overrides the status (e.g. 502 instead of 503 for an upstream failure).
    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Adds `Retry-After: secs`.
    #[must_use]
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// 400 malformed request.
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::MalformedRequest, detail)
    }

    /// 422 with one entry per invalid field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.len() {
            1 => "1 field is invalid.".to_owned(),
            n => format!("{n} fields are invalid."),
        };
        let mut p = Self::new(ProblemKind::Validation, detail);
        p.errors = errors;
        p
    }

    /// 404 with a generic detail (never says whether the thing exists for someone else).
    pub fn not_found() -> Self {
        Self::new(ProblemKind::NotFound, "The resource does not exist.")
    }

    /// 409 conflict.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Conflict, detail)
    }

    /// 401 for a request without credentials (`WWW-Authenticate: Bearer`).
    pub fn missing_token() -> Self {
        let mut p = Self::new(
            ProblemKind::Unauthorized,
            "This route needs a bearer token.",
        );
        p.www_authenticate = Some("Bearer");
        p
    }

    /// 401 for a request whose token is invalid or expired.
    pub fn invalid_token() -> Self {
        let mut p = Self::new(
            ProblemKind::Unauthorized,
            "The bearer token is invalid or expired.",
        );
        p.www_authenticate = Some("Bearer error=\"invalid_token\"");
        p
    }

    /// 403.
    pub fn forbidden() -> Self {
        Self::new(ProblemKind::Forbidden, "This route needs the admin role.")
    }

    /// 500: logs `err` with its whole cause chain and the trace id, answers a generic body.
    pub fn internal(err: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        tracing::error!(error = %chain, "Request failed with an internal error.");
        Self::new(
            ProblemKind::Internal,
            "An internal error occurred; it has been logged.",
        )
    }

    /// The problem type.
    pub fn kind(&self) -> ProblemKind {
        self.kind
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The field errors of a validation problem.
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// The human-readable detail.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// Serializes the body for a request with `instance` path and `trace_id`.
    pub fn body_json(&self, instance: Option<&str>, trace_id: Option<&str>) -> Vec<u8> {
        let body = Body {
            type_: format!("urn:bazaar:problem:{}", self.kind.slug()),
            title: self.kind.title(),
            status: self.status.as_u16(),
            detail: &self.detail,
            instance,
            trace_id,
            errors: &self.errors,
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

impl From<anyhow::Error> for Problem {
    fn from(err: anyhow::Error) -> Self {
        Problem::internal(err.as_ref())
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.kind.slug(),
            self.status.as_u16(),
            self.detail
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = context::with_current(|c| {
            self.body_json(Some(c.path.as_str()), Some(c.trace_id.as_str()))
        })
        .unwrap_or_else(|| self.body_json(None, None));
        let mut res = Response::new(axum::body::Body::from(body));
        *res.status_mut() = self.status;
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(v) = self.www_authenticate {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(v));
        }
        res
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn validation_body_carries_pointers_and_type() {
        let p = Problem::validation(vec![FieldError::new("/email", "must be an email address")]);
        let v: serde_json::Value =
            serde_json::from_slice(&p.body_json(Some("/x"), Some("abc"))).unwrap();
        assert_eq!(v["type"], "urn:bazaar:problem:validation");
        assert_eq!(v["status"], 422);
        assert_eq!(v["errors"][0]["pointer"], "/email");
        assert_eq!(v["instance"], "/x");
        assert_eq!(v["trace_id"], "abc");
    }

    #[test]
    fn internal_problem_hides_the_cause() {
        let err = std::io::Error::other("password=hunter2 at db.internal:5432");
        let p = Problem::internal(&err);
        let body = String::from_utf8(p.body_json(None, None)).unwrap();
        assert!(!body.contains("hunter2"));
        assert!(!body.contains("db.internal"));
        assert_eq!(p.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn unauthorized_problems_set_www_authenticate() {
        let res = Problem::invalid_token().into_response();
        assert_eq!(res.status(), 401);
        assert_eq!(
            res.headers()[header::WWW_AUTHENTICATE],
            "Bearer error=\"invalid_token\""
        );
        let res = Problem::missing_token().into_response();
        assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(res.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }
}
