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
use http::{header, HeaderValue, StatusCode};
use tracing::Instrument;

use crate::{
    context::{self, LogFields, RequestContext, RouteName, REQUEST_ID, TRACEPARENT},
    health::Health,
    metrics::RedMetrics,
    problem::{Problem, ProblemKind},
    telemetry,
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
    metrics: Arc<RedMetrics>,
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
            metrics: Arc::new(RedMetrics::new(self.service)),
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
        .map_or(RouteName::Unmatched, |p| RouteName::Matched(p.clone()));
    let span = if telemetry::request_fields_on_events() {
        // The formatter adds the request's fields to each line from the task-local context.
        tracing::info_span!("request")
    } else {
        tracing::info_span!(
            "request",
            service = state.service,
            method = %method,
            route = %route.as_str(),
            trace_id = %ctx.trace_id,
            request_id = %ctx.request_id,
        )
    };
    let started = Instant::now();
    let traceparent = ctx.traceparent_header();
    let request_id = ctx.request_id_header();
    let fut = AssertUnwindSafe(next.run(req)).catch_unwind();
    let current = context::Current {
        ctx,
        log: Some(LogFields {
            service: state.service,
            method,
            route,
        }),
    };
    let metrics = state.metrics.clone();
    let mut res = context::scope_full(
        current,
        async move {
            let res = match fut.await {
                Ok(res) => res,
                Err(_) => {
                    tracing::error!("Handler panicked.");
                    Problem::new(
                        ProblemKind::Internal,
                        "An internal error occurred; it has been logged.",
                    )
                    .into_response()
                }
            };
            let status = res.status().as_u16();
            let elapsed = started.elapsed().as_secs_f64();
            context::with_current_full(|c| {
                if let Some(log) = &c.log {
                    metrics.record(log.route.as_str(), &log.method, status, elapsed);
                }
            });
            if status >= 500 {
                tracing::warn!(status, elapsed_ms = elapsed * 1e3, "Request failed.");
            } else {
                tracing::debug!(status, elapsed_ms = elapsed * 1e3, "Request served.");
            }
            res
        }
        .instrument(span),
    )
    .await;
    if res.status() == StatusCode::PAYLOAD_TOO_LARGE {
        // A 413 leaves (part of) the body unread on the connection: it cannot carry another
        // request. Telling the client also makes hyper close it after this answer.
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
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
