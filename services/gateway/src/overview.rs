//! `GET /api/v1/me/overview`: the one composed endpoint (backend for frontend).
//!
//! Three calls go out in parallel, each with its own timeout, carrying the caller's
//! `Authorization` and the request's trace context:
//!
//! | part | service | call | taken from the answer |
//! |---|---|---|---|
//! | `user` | identity | `GET /api/v1/users/me` | the whole body |
//! | `recent_orders` | order | `GET /api/v1/orders?limit=5` | `items` |
//! | `unread_notifications` | notification | `GET /api/v1/me/notifications?limit=1` | `unread` |
//!
//! A part that fails (no instance, no connection, timeout, a status other than 2xx, a body
//! that is not what was expected) is `null`, and `warnings` names it and its service — never
//! an address or an upstream's error text. The answer is 200 as long as the caller is who the
//! token says: an upstream that rejects the token (401) makes the whole answer 401, since the
//! other parts would be just as wrong. Each part's outcome is counted in
//! `bazaar_gateway_composition_parts_total{part,outcome}`.
//!
//! The calls go through the proxy's own forwarding code ([`proxy::forward`]): the same
//! resolver, balancer, connection pool, header hygiene and upstream metrics.

use std::{net::IpAddr, sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::{Request, State},
    response::{IntoResponse, Response},
};
use bazaar_runtime::{Problem, ProblemKind};
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde_json::{json, Value};

use crate::{
    proxy,
    routes::{AuthPolicy, Route},
    state::{AppState, Inner},
};

/// The public path.
pub const PATH: &str = "/api/v1/me/overview";
/// The time each part is given, answer body included.
pub const PART_TIMEOUT: Duration = Duration::from_secs(1);
/// The largest answer body a part may have.
const PART_BODY_LIMIT: usize = 1024 * 1024;
/// The metric counting part outcomes.
const PARTS_METRIC: &str = "bazaar_gateway_composition_parts_total";

/// How the body of a part's answer becomes the part's value.
#[derive(Clone, Copy)]
enum Extract {
    /// The whole JSON object.
    Object,
    /// The `items` array.
    Items,
    /// The `unread` count.
    Unread,
}

impl Extract {
    fn apply(self, body: Value) -> Option<Value> {
        match self {
            Extract::Object => body.is_object().then_some(body),
            Extract::Items => match body {
                Value::Object(mut m) => m.remove("items").filter(Value::is_array),
                _ => None,
            },
            Extract::Unread => body.get("unread").and_then(Value::as_u64).map(Value::from),
        }
    }
}

/// One part of the overview: where it comes from and how.
pub(crate) struct Part {
    name: &'static str,
    service: &'static str,
    /// The same service name, as the proxy takes it.
    upstream: Arc<str>,
    /// Path and query of the upstream call.
    target: &'static str,
    extract: Extract,
    /// The call as a route: its timeout, and the path it forwards (as it is, no rewrite).
    route: Route,
}

/// The overview's edge policy and parts, built once.
pub(crate) struct Overview {
    policy: Route,
    parts: [Part; 3],
}

impl Overview {
    pub(crate) fn new(timeout: Duration) -> Overview {
        let part = |name, service, target: &'static str, extract| Part {
            name,
            service,
            upstream: Arc::from(service),
            target,
            extract,
            route: Route::new(target.split('?').next().unwrap_or(target), service).timeout(timeout),
        };
        Overview {
            // Never forwarded; the service name only has to be well-formed.
            policy: Route::new(PATH, "gateway")
                .auth(AuthPolicy::Required)
                .methods(vec![Method::GET, Method::HEAD]),
            parts: [
                part("user", "identity", "/api/v1/users/me", Extract::Object),
                part(
                    "recent_orders",
                    "order",
                    "/api/v1/orders?limit=5",
                    Extract::Items,
                ),
                part(
                    "unread_notifications",
                    "notification",
                    "/api/v1/me/notifications?limit=1",
                    Extract::Unread,
                ),
            ],
        }
    }
}

/// How one part went.
enum Outcome {
    Ok(Value),
    /// The upstream refused the caller's token.
    Unauthorized,
    /// The part is missing; the label says why.
    Failed(&'static str),
}

/// `GET /api/v1/me/overview`.
pub(crate) async fn handle(State(state): State<AppState>, req: Request) -> Response {
    let inner = &*state.inner;
    proxy::guarded(inner, &inner.overview.policy, req, |req, ip| {
        compose(inner, req, ip)
    })
    .await
}

async fn compose(inner: &Inner, req: Request, client_ip: IpAddr) -> Response {
    let mut headers = HeaderMap::new();
    if let Some(auth) = req.headers().get(header::AUTHORIZATION) {
        headers.insert(header::AUTHORIZATION, auth.clone());
    }
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    let [a, b, c] = &inner.overview.parts;
    // Joined in this task (not spawned), so each call sees the request's trace context.
    let (a_out, b_out, c_out) = tokio::join!(
        fetch(inner, a, &headers, client_ip),
        fetch(inner, b, &headers, client_ip),
        fetch(inner, c, &headers, client_ip),
    );
    let outcomes = [(a, a_out), (b, b_out), (c, c_out)];
    let mut rejected = false;
    for (part, outcome) in &outcomes {
        let label = match outcome {
            Outcome::Ok(_) => "ok",
            Outcome::Unauthorized => {
                rejected = true;
                "unauthorized"
            }
            Outcome::Failed(why) => why,
        };
        metrics::counter!(PARTS_METRIC, "part" => part.name, "outcome" => label).increment(1);
    }
    if rejected {
        return Problem::invalid_token().into_response();
    }
    let mut body = serde_json::Map::new();
    let mut warnings = Vec::new();
    for (part, outcome) in outcomes {
        let value = match outcome {
            Outcome::Ok(value) => value,
            Outcome::Unauthorized | Outcome::Failed(_) => {
                let detail = if matches!(outcome, Outcome::Failed("timeout")) {
                    format!("{} did not answer in time", part.service)
                } else {
                    format!("{} is unavailable", part.service)
                };
                warnings
                    .push(json!({"part": part.name, "service": part.service, "detail": detail}));
                Value::Null
            }
        };
        body.insert(part.name.to_owned(), value);
    }
    body.insert("warnings".to_owned(), Value::Array(warnings));
    let mut res = Body::from(Value::Object(body).to_string()).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Personal data, composed per request: never for a shared cache.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if req.method() == Method::HEAD {
        *res.body_mut() = Body::empty();
    }
    res
}

/// One part's call, with its timeout covering the answer's body too.
async fn fetch(inner: &Inner, part: &Part, headers: &HeaderMap, client_ip: IpAddr) -> Outcome {
    match tokio::time::timeout(part.route.timeout, call(inner, part, headers, client_ip)).await {
        Ok(outcome) => outcome,
        Err(_) => {
            tracing::warn!(
                part = part.name,
                service = part.service,
                "Composition part timed out."
            );
            Outcome::Failed("timeout")
        }
    }
}

async fn call(inner: &Inner, part: &Part, headers: &HeaderMap, client_ip: IpAddr) -> Outcome {
    let mut req = Request::new(Body::empty());
    *req.uri_mut() = http::Uri::from_static(part.target);
    *req.headers_mut() = headers.clone();
    let res = match proxy::forward(inner, &part.route, &part.upstream, client_ip, req).await {
        Ok(res) => res,
        Err(problem) => {
            return Outcome::Failed(match (problem.kind(), problem.status()) {
                (ProblemKind::UpstreamTimeout, _) => "timeout",
                (_, StatusCode::SERVICE_UNAVAILABLE) => "unavailable",
                _ => "error",
            })
        }
    };
    let status = res.status();
    if status == StatusCode::UNAUTHORIZED {
        return Outcome::Unauthorized;
    }
    if !status.is_success() {
        tracing::warn!(
            part = part.name,
            service = part.service,
            status = status.as_u16(),
            "Composition part failed."
        );
        return Outcome::Failed("error");
    }
    let bytes = match Limited::new(res.into_body(), PART_BODY_LIMIT)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Outcome::Failed("error"),
    };
    match serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| part.extract.apply(v))
    {
        Some(value) => Outcome::Ok(value),
        None => {
            tracing::warn!(
                part = part.name,
                service = part.service,
                "Composition part answered an unexpected body."
            );
            Outcome::Failed("bad_response")
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parts_take_what_the_contract_says_from_each_answer() {
        assert_eq!(
            Extract::Object.apply(json!({"id": "u1"})),
            Some(json!({"id": "u1"}))
        );
        assert_eq!(Extract::Object.apply(json!([1])), None);
        assert_eq!(
            Extract::Items.apply(json!({"items": [{"id": 1}], "next_cursor": null})),
            Some(json!([{"id": 1}]))
        );
        assert_eq!(Extract::Items.apply(json!({"items": 3})), None);
        assert_eq!(Extract::Items.apply(json!({})), None);
        assert_eq!(
            Extract::Unread.apply(json!({"items": [], "unread": 4})),
            Some(json!(4))
        );
        assert_eq!(Extract::Unread.apply(json!({"unread": -1})), None);
        assert_eq!(Extract::Unread.apply(json!({"unread": "4"})), None);
    }

    #[test]
    fn each_part_calls_its_service_with_its_own_timeout() {
        let o = Overview::new(PART_TIMEOUT);
        let calls: Vec<_> = o
            .parts
            .iter()
            .map(|p| (p.name, &*p.upstream, p.target))
            .collect();
        assert_eq!(
            calls,
            [
                ("user", "identity", "/api/v1/users/me"),
                ("recent_orders", "order", "/api/v1/orders?limit=5"),
                (
                    "unread_notifications",
                    "notification",
                    "/api/v1/me/notifications?limit=1"
                ),
            ]
        );
        for p in &o.parts {
            assert_eq!(p.route.timeout, PART_TIMEOUT);
            let uri = http::Uri::from_static(p.target);
            assert_eq!(p.route.upstream_path(uri.path()), uri.path());
        }
        assert_eq!(o.policy.auth, AuthPolicy::Required);
    }
}
