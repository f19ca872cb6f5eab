//! The reverse proxy: route, rate-limit, authorize, forward, answer.
//!
//! Per request, in this order (each step can answer on its own):
//! 1. route by longest segment prefix (404 when none);
//! 2. rate limit (429), so even refused requests cost an attacker a token — every answer
//!    from here on carries the `RateLimit-*` headers;
//! 3. method allow-list (405), auth policy (401/403; the runtime stack has already refused
//!    invalid tokens and left the claims of a valid one in the request);
//! 4. declared body size (413 before contacting anyone);
//! 5. response cache for anonymous `GET`/`HEAD`;
//! 6. resolve, balance and send, retrying connect failures on other instances (502/503/504).
//!
//! Bodies stream in both directions; nothing is buffered except a copy of a cacheable response.

use std::{
    borrow::Cow,
    future::Future,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Instant,
};

use axum::{
    body::Body,
    extract::{ConnectInfo, Request, State},
    response::{IntoResponse, Response},
};
use bazaar_auth::Claims;
use bazaar_runtime::{context, Problem, ProblemKind};
use http::{
    header, uri::PathAndQuery, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri,
};

use crate::{
    cache::{self, Recording, RecordingBody, Stored},
    ratelimit::{Decision, RateKey, Subject},
    routes::{AuthPolicy, RateKeyKind, Route},
    state::{AppState, Inner},
};

pub(crate) mod body;
pub(crate) mod client;
mod headers;
pub(crate) mod telemetry;

use body::{PendingBody, RequestBodyError};
use client::PooledBody;
use telemetry::Failure;

/// Connect failures are retried on other instances at most this many times.
pub const MAX_CONNECT_RETRIES: usize = 2;

static RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
static RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
static RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
static X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// The handler behind every path no other gateway route claims.
pub(crate) async fn handle(State(state): State<AppState>, req: Request) -> Response {
    let inner = &*state.inner;
    let path = req.uri().path();
    if has_dot_segment(path) {
        return dot_segments().into_response();
    }
    let Some(route) = inner.routes.find(path) else {
        return Problem::not_found().into_response();
    };
    guarded(inner, route, req, |req, client_ip| {
        serve(inner, route, client_ip, req)
    })
    .await
}

/// Applies the edge policy of `route` — rate limit (429), method allow-list (405), auth
/// policy (401/403), in that order — and answers with `next` once all of them let the request
/// through. Every answer carries the `RateLimit-*` headers.
///
/// The proxy's `next` is [`serve`] on the same route; the gateway's own endpoints (composition,
/// routing by query parameter) pass their own, so they get exactly the same edge policy.
pub(crate) async fn guarded<F, Fut>(inner: &Inner, route: &Route, req: Request, next: F) -> Response
where
    F: FnOnce(Request, IpAddr) -> Fut,
    Fut: Future<Output = Response>,
{
    let client_ip = client_ip(&req);
    let body_pending = !http_body::Body::is_end_stream(req.body());
    let decision = {
        let claims = req.extensions().get::<Claims>();
        let (rate, scope, subject) = match (route.rate_limit, claims) {
            (Some(limit), Some(c)) if limit.key == RateKeyKind::Caller => {
                (limit.rate, route.prefix.as_str(), Subject::User(&c.sub))
            }
            (Some(limit), _) => (limit.rate, route.prefix.as_str(), Subject::Ip(client_ip)),
            (None, Some(c)) => (inner.limits.user, "", Subject::User(&c.sub)),
            (None, None) => (inner.limits.anon, "", Subject::Ip(client_ip)),
        };
        inner.limiter.check(RateKey { scope, subject }, rate).await
    };
    let mut res = if !decision.allowed {
        metrics::counter!("bazaar_gateway_rate_limited_total").increment(1);
        Problem::new(
            ProblemKind::RateLimited,
            "Too many requests; slow down and retry after the indicated time.",
        )
        .with_retry_after(decision.retry_after_secs.max(1))
        .into_response()
    } else if !route.allows(req.method()) {
        method_not_allowed(route)
    } else if let Err(problem) = authorize(route.auth, req.extensions().get::<Claims>()) {
        problem.into_response()
    } else {
        next(req, client_ip).await
    };
    rate_limit_headers(res.headers_mut(), &decision);
    if body_pending && res.extensions().get::<Forwarded>().is_none() {
        // Answered without reading the whole request body: the rest of it is still on the
        // wire, so the connection cannot carry another request. Say so, which also makes hyper
        // close it once this answer is out, instead of a client reusing it and failing.
        close_connection(&mut res);
    }
    res
}

/// Marks a response that the upstream gave, after the request body went to it.
#[derive(Clone, Copy)]
struct Forwarded;

fn close_connection(res: &mut Response) {
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

/// Forwards a request that the edge policy let through to `route`'s upstream: body limit
/// (413), response cache, then the upstream's answer (or 502/503/504).
pub(crate) async fn serve(
    inner: &Inner,
    route: &Route,
    client_ip: IpAddr,
    req: Request,
) -> Response {
    match declared_length(req.headers()) {
        Ok(Some(len)) if len > route.body_limit => return too_large(),
        Ok(_) => {}
        Err(problem) => return problem.into_response(),
    }

    let is_head = req.method() == Method::HEAD;
    let cacheable = !route.cache_ttl.is_zero()
        && (is_head || req.method() == Method::GET)
        && !req.headers().contains_key(header::AUTHORIZATION);
    let mut record_as = None;
    if cacheable {
        let key = req.uri().path_and_query().map_or("/", PathAndQuery::as_str);
        if let Some(hit) = inner.cache.get(key, Instant::now()) {
            metrics::counter!("bazaar_gateway_cache_total", "result" => "hit").increment(1);
            return cached_response(&hit, is_head);
        }
        metrics::counter!("bazaar_gateway_cache_total", "result" => "miss").increment(1);
        if !is_head {
            record_as = Some(Box::<str>::from(key));
        }
    }

    let Some(upstream) = route.choose_upstream() else {
        return no_instance().into_response();
    };
    let mut res = match forward(inner, route, &upstream.service, client_ip, req).await {
        Ok(res) => res,
        Err(problem) => return problem.into_response(),
    };
    headers::prepare_response(res.headers_mut());
    res.extensions_mut().insert(Forwarded);
    let mut res = match record_as {
        Some(key) if res.status() == StatusCode::OK && cache::is_storable(res.headers()) => {
            let mut stored_headers = res.headers().clone();
            stored_headers.remove(context::REQUEST_ID);
            stored_headers.remove(context::TRACEPARENT);
            let recording =
                Recording::new(inner.cache.clone(), key, stored_headers, route.cache_ttl);
            res.map(|b| Body::new(RecordingBody::new(b, recording)))
        }
        _ => res.map(Body::new),
    };
    if cacheable {
        res.headers_mut()
            .insert(X_CACHE.clone(), HeaderValue::from_static("MISS"));
    }
    res
}

/// Sends the request to an instance of `service`; a connect failure (nothing sent yet) is
/// retried on other instances. The request's headers are prepared here (hop-by-hop and
/// internal headers removed, forwarding and trace headers added), so every upstream call of
/// the gateway — proxied or composed — leaves the same way.
pub(crate) async fn forward(
    inner: &Inner,
    route: &Route,
    service: &Arc<str>,
    client_ip: IpAddr,
    req: Request,
) -> Result<http::Response<PooledBody>, Problem> {
    let deadline = tokio::time::Instant::now() + route.timeout;
    let (parts, body) = req.into_parts();
    let path_and_query = upstream_path_and_query(route, &parts.uri)?;
    let method = parts.method;
    let mut headers = parts.headers;
    if context::with_current(|ctx| headers::prepare_request(&mut headers, client_ip, Some(ctx)))
        .is_none()
    {
        headers::prepare_request(&mut headers, client_ip, None);
    }
    let body = PendingBody::new(body, route.body_limit);

    let instances = tokio::time::timeout_at(deadline, inner.resolver.resolve(service))
        .await
        .map_err(|_| timed_out(service))?;
    let balancer = inner.balancer(service);
    let Some(mut pick) = balancer.pick(&instances) else {
        inner.metrics.failed(service, Failure::Unavailable);
        return Err(no_instance());
    };
    let mut excluded: Vec<String> = Vec::new();
    loop {
        let Some(attempt_body) = body.attempt() else {
            break;
        };
        let addr = &pick.instance().http_addr;
        let host = match HeaderValue::from_str(addr) {
            Ok(host) if addr.parse::<http::uri::Authority>().is_ok() => host,
            _ => {
                let instance_id = &pick.instance().instance_id;
                tracing::warn!(%service, %instance_id, "Instance has an unusable address.");
                excluded.push(pick.instance().instance_id.clone());
                pick.failure_connect();
                match balancer.pick_excluding(&instances, &excluded) {
                    Some(p) => {
                        pick = p;
                        continue;
                    }
                    None => break,
                }
            }
        };
        // Headers are needed again only if a retry is possible.
        let retry_possible =
            excluded.len() < MAX_CONNECT_RETRIES && instances.len() > excluded.len() + 1;
        let mut out = http::Request::new(attempt_body);
        *out.method_mut() = method.clone();
        // Origin-form: the connection already goes to the instance, which is named in Host.
        *out.uri_mut() = Uri::from(path_and_query.clone());
        *out.headers_mut() = if retry_possible {
            headers.clone()
        } else {
            std::mem::take(&mut headers)
        };
        out.headers_mut().insert(header::HOST, host);

        let started = Instant::now();
        match tokio::time::timeout_at(
            deadline,
            inner.client.request(&pick.instance().http_addr, out),
        )
        .await
        {
            Err(_elapsed) => {
                pick.failure();
                inner.metrics.failed(service, Failure::Timeout);
                return Err(timed_out(service));
            }
            Ok(Ok(res)) => {
                let elapsed = started.elapsed();
                if res.status().is_server_error() {
                    pick.failure();
                } else {
                    pick.success(elapsed);
                }
                inner.metrics.answered(service, res.status(), elapsed);
                return Ok(res);
            }
            Ok(Err(err)) if err.is_connect() => {
                let instance_id = &pick.instance().instance_id;
                tracing::debug!(%service, %instance_id, error = %err, "Could not connect to an instance.");
                excluded.push(pick.instance().instance_id.clone());
                pick.failure_connect();
                if excluded.len() > MAX_CONNECT_RETRIES {
                    break;
                }
                match balancer.pick_excluding(&instances, &excluded) {
                    Some(p) => pick = p,
                    None => break,
                }
            }
            Ok(Err(err)) => {
                return Err(match find_cause::<RequestBodyError>(&err) {
                    Some(RequestBodyError::TooLarge) => {
                        drop(pick);
                        too_large_problem()
                    }
                    Some(RequestBodyError::Read(_)) => {
                        drop(pick);
                        Problem::malformed("The request body could not be read.")
                    }
                    _ => {
                        let instance_id = &pick.instance().instance_id;
                        let error = error_chain(&err);
                        tracing::warn!(%service, %instance_id, %error, "Upstream request failed.");
                        pick.failure();
                        inner.metrics.failed(service, Failure::Error);
                        upstream_failed()
                    }
                });
            }
        }
    }
    inner.metrics.failed(service, Failure::ConnectError);
    Err(upstream_failed())
}

fn authorize(policy: AuthPolicy, claims: Option<&Claims>) -> Result<(), Problem> {
    match (policy, claims) {
        (AuthPolicy::Public, _) => Ok(()),
        (AuthPolicy::Required | AuthPolicy::Admin, None) => Err(Problem::missing_token()),
        (AuthPolicy::Required, Some(_)) => Ok(()),
        (AuthPolicy::Admin, Some(c)) if c.is_admin() => Ok(()),
        (AuthPolicy::Admin, Some(_)) => Err(Problem::forbidden()),
    }
}

/// The client address as the socket saw it; the App puts it into every request. Without it
/// (a router driven by `oneshot` in tests) every caller is "0.0.0.0".
fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(addr)| {
            addr.ip()
        })
}

/// `Content-Length` if declared; hyper has already refused malformed or conflicting ones, so
/// an unparsable value here is answered 400 rather than trusted.
fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, Problem> {
    match headers.get(header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| Problem::malformed("The Content-Length header is not a number.")),
    }
}

/// The answer to a path with dot segments.
pub(crate) fn dot_segments() -> Problem {
    Problem::malformed("The path must not contain '.' or '..' segments.")
}

/// `.`/`..` segments (also percent-encoded) could make an upstream that normalizes paths
/// serve something other than what the gateway routed and authorized; nobody needs them.
pub(crate) fn has_dot_segment(path: &str) -> bool {
    if !path.contains('.') && !path.contains('%') {
        return false;
    }
    path.split('/').any(|segment| {
        let mut dots = 0;
        let mut rest = segment;
        loop {
            if let Some(r) = rest.strip_prefix('.') {
                rest = r;
            } else if rest.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("%2e")) {
                rest = &rest[3..];
            } else {
                break;
            }
            dots += 1;
        }
        rest.is_empty() && (1..=2).contains(&dots)
    })
}

fn upstream_path_and_query(route: &Route, uri: &Uri) -> Result<PathAndQuery, Problem> {
    let path = route.upstream_path(uri.path());
    if let (Cow::Borrowed(_), Some(pq)) = (&path, uri.path_and_query()) {
        // No rewrite: the client's path and query go as they are, without copying.
        return Ok(pq.clone());
    }
    let joined = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.into_owned(),
    };
    PathAndQuery::try_from(joined).map_err(|_| Problem::malformed("The request path is malformed."))
}

fn cached_response(stored: &Stored, is_head: bool) -> Response {
    let body = if is_head {
        Body::empty()
    } else {
        Body::from(stored.body.clone())
    };
    let mut res = Response::new(body);
    *res.status_mut() = stored.status;
    *res.headers_mut() = stored.headers.clone();
    let age = Instant::now()
        .saturating_duration_since(stored.stored_at)
        .as_secs();
    res.headers_mut()
        .insert(X_CACHE.clone(), HeaderValue::from_static("HIT"));
    res.headers_mut()
        .insert(header::AGE, HeaderValue::from(age));
    res
}

fn rate_limit_headers(headers: &mut HeaderMap, d: &Decision) {
    headers.insert(RATELIMIT_LIMIT.clone(), HeaderValue::from(d.limit));
    headers.insert(RATELIMIT_REMAINING.clone(), HeaderValue::from(d.remaining));
    headers.insert(RATELIMIT_RESET.clone(), HeaderValue::from(d.reset_secs));
}

fn method_not_allowed(route: &Route) -> Response {
    let mut res = Problem::new(
        ProblemKind::MethodNotAllowed,
        "This method is not allowed on this resource.",
    )
    .into_response();
    if let Some(methods) = &route.methods {
        let allow = methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        if let Ok(v) = HeaderValue::try_from(allow) {
            res.headers_mut().insert(header::ALLOW, v);
        }
    }
    res
}

fn too_large_problem() -> Problem {
    Problem::new(
        ProblemKind::PayloadTooLarge,
        "The request body is larger than this route accepts.",
    )
}

fn too_large() -> Response {
    too_large_problem().into_response()
}

fn no_instance() -> Problem {
    Problem::new(
        ProblemKind::UpstreamUnavailable,
        "No instance of the service behind this route is available.",
    )
    .with_retry_after(1)
}

fn upstream_failed() -> Problem {
    Problem::new(
        ProblemKind::UpstreamUnavailable,
        "The service behind this route could not be reached.",
    )
    .with_status(StatusCode::BAD_GATEWAY)
}

fn timed_out(service: &str) -> Problem {
    tracing::warn!(%service, "Upstream did not answer within the route's timeout.");
    Problem::new(
        ProblemKind::UpstreamTimeout,
        "The service behind this route did not answer in time.",
    )
}

fn find_cause<'a, E: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        cur = e.source();
    }
    None
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_dot_segments_in_any_spelling() {
        for bad in [
            "/a/../b",
            "/a/./b",
            "/a/..",
            "/a/%2e%2E/b",
            "/a/.%2e",
            "/a/%2E",
        ] {
            assert!(has_dot_segment(bad), "{bad}");
        }
        for ok in [
            "/a/b",
            "/a/.well-known",
            "/.well-known/jwks.json",
            "/a/...",
            "/a/b.json",
            "/a/%2ex",
        ] {
            assert!(!has_dot_segment(ok), "{ok}");
        }
    }

    #[test]
    fn authorization_follows_the_route_policy() {
        let customer = Claims::new_access("u", vec!["customer".into()], 0);
        let admin = Claims::new_access("a", vec!["customer".into(), "admin".into()], 0);
        assert!(authorize(AuthPolicy::Public, None).is_ok());
        assert_eq!(
            authorize(AuthPolicy::Required, None).unwrap_err().status(),
            401
        );
        assert!(authorize(AuthPolicy::Required, Some(&customer)).is_ok());
        assert_eq!(
            authorize(AuthPolicy::Admin, Some(&customer))
                .unwrap_err()
                .status(),
            403
        );
        assert!(authorize(AuthPolicy::Admin, Some(&admin)).is_ok());
    }

    #[test]
    fn rewrites_keep_the_query() {
        let route = Route::new("/api/v1/admin/sagas", "order").rewrite("/admin/sagas");
        let uri: Uri = "/api/v1/admin/sagas?status=stuck".parse().unwrap();
        assert_eq!(
            upstream_path_and_query(&route, &uri).unwrap(),
            "/admin/sagas?status=stuck"
        );
        let route = Route::new("/api/v1/products", "catalog");
        let uri: Uri = "/api/v1/products/1?x=%20".parse().unwrap();
        assert_eq!(
            upstream_path_and_query(&route, &uri).unwrap(),
            "/api/v1/products/1?x=%20"
        );
    }
}
