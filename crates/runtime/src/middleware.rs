//! The standard stack every service port is wrapped in.
//!
//! Order matters and is fixed here, outermost first:
//! 1. request context (request id + trace context) — so everything below, including
//!    problems produced by later layers, carries the trace id;
//! 2. tracing span + RED metrics — measures what the client experiences, errors included;
//! 3. panic catcher — a handler bug becomes a logged 500 problem, never a dropped connection;
//! 4. token verification — an invalid token is refused before routing, on every route;
//! 5. body limit — extractors answer 413 past it.

use std::{panic::AssertUnwindSafe, sync::Arc, time::Instant};

use axum::{
    body::Body,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
    Router,
};
use bazaar_auth::{AuthError, Verifier};
use futures::FutureExt;
use http::{header, HeaderValue};
use tracing::Instrument;

use crate::{
    context::{self, RequestContext, REQUEST_ID, TRACEPARENT},
    health::Health,
    problem::{Problem, ProblemKind},
};

/// The default body limit of every route (64 KiB).
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// Builds the standard stack around a service's routes.
#[derive(Clone)]
pub struct ServiceStack {
    service: &'static str,
    health: Health,
    verifier: Option<Arc<Verifier>>,
    body_limit: usize,
}

impl std::fmt::Debug for ServiceStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceStack")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct StackState {
    service: &'static str,
    verifier: Option<Arc<Verifier>>,
}

impl ServiceStack {
    /// A stack for `service` (used as the `service` metric label and log field).
    pub fn new(service: &'static str, health: Health) -> Self {
        // Metrics recorded before the recorder exists are lost: install it now.
        let _ = crate::metrics::handle();
        Self {
            service,
            health,
            verifier: None,
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// Verifies bearer tokens with `verifier`.
    #[must_use]
    pub fn with_verifier(mut self, verifier: Arc<Verifier>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Sets the body limit.
    #[must_use]
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The health of this service.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Wraps `routes` with health endpoints, problem fallbacks and the standard layers.
    pub fn wrap(&self, routes: Router) -> Router {
        let state = StackState {
            service: self.service,
            verifier: self.verifier.clone(),
        };
        routes
            .merge(self.health.routes())
            .fallback(|| async { Problem::not_found() })
            .method_not_allowed_fallback(|| async {
                Problem::new(
                    ProblemKind::MethodNotAllowed,
                    "This method is not allowed on this resource.",
                )
            })
            .layer(DefaultBodyLimit::max(self.body_limit))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                authenticate,
            ))
            .layer(axum::middleware::from_fn_with_state(state, observe))
    }
}

/// Context, span, metrics, panic catching.
async fn observe(State(state): State<StackState>, req: Request, next: Next) -> Response {
    let ctx = RequestContext::from_headers(req.headers(), req.uri().path());
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let span = tracing::info_span!(
        "request",
        service = state.service,
        method = %method,
        route = %route,
        trace_id = %ctx.trace_id,
        request_id = %ctx.request_id,
    );
    let started = Instant::now();
    let traceparent = HeaderValue::from_str(&ctx.traceparent()).ok();
    let request_id = HeaderValue::from_str(&ctx.request_id).ok();
    let fut = AssertUnwindSafe(next.run(req)).catch_unwind();
    let mut res = context::scope(ctx.clone(), async move {
        match fut.await {
            Ok(res) => res,
            Err(_) => {
                tracing::error!("Handler panicked.");
                Problem::new(
                    ProblemKind::Internal,
                    "An internal error occurred; it has been logged.",
                )
                .into_response()
            }
        }
    })
    .instrument(span.clone())
    .await;
    let status = res.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    let labels = [
        ("service", state.service.to_owned()),
        ("route", route),
        ("method", method.to_string()),
        ("status", status.to_string()),
    ];
    metrics::counter!("bazaar_http_requests_total", &labels).increment(1);
    metrics::histogram!("bazaar_http_request_duration_seconds", &labels).record(elapsed);
    if status >= 500 {
        span.in_scope(|| tracing::warn!(status, elapsed_ms = elapsed * 1e3, "Request failed."));
    } else {
        span.in_scope(|| tracing::debug!(status, elapsed_ms = elapsed * 1e3, "Request served."));
    }
    let h = res.headers_mut();
    if let Some(v) = traceparent {
        h.insert(TRACEPARENT, v);
    }
    if let Some(v) = request_id {
        h.insert(REQUEST_ID, v);
    }
    res
}

/// Verifies a present bearer token; stores the claims for the extractors.
async fn authenticate(State(state): State<StackState>, mut req: Request, next: Next) -> Response {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return next.run(req).await;
    };
    let Some(verifier) = state.verifier.as_ref() else {
        return next.run(req).await;
    };
    let Some(token) = value.to_str().ok().and_then(bazaar_auth::bearer_token) else {
        return Problem::invalid_token().into_response();
    };
    match verifier.verify(token).await {
        Ok(claims) => {
            req.extensions_mut().insert(claims);
            next.run(req).await
        }
        Err(AuthError::KeysUnavailable) => {
            tracing::warn!("No token signing keys are available to verify a request.");
            Problem::new(
                ProblemKind::UpstreamUnavailable,
                "Tokens cannot be verified right now.",
            )
            .with_retry_after(1)
            .into_response()
        }
        Err(err) => {
            tracing::debug!(error = %err, "Refused a bearer token.");
            Problem::invalid_token().into_response()
        }
    }
}

/// An empty 204 response (for handlers that answer no body).
pub fn no_content() -> Response {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = http::StatusCode::NO_CONTENT;
    res
}
