//! Operations endpoints routed by service name rather than by path prefix.
//!
//! Every service with events keeps its own dead letters (and every service its own circuit
//! breakers), so one public path has to reach many services:
//!
//! - `GET /api/v1/admin/dead-letters?service=X[&status=&limit=&cursor=]` → X's
//!   `GET /admin/dead-letters` with the same query string;
//! - `POST /api/v1/admin/dead-letters/{service}/{id}/redrive` → that service's
//!   `POST /admin/dead-letters/{service}/{id}/redrive`;
//! - `GET /api/v1/admin/breakers?service=X` → X's `GET /admin/breakers`;
//! - `GET /api/v1/admin/state?service=X` → X's `GET /admin/state` (everything the consistency
//!   checker needs from X, unpaged: it gets a longer upstream timeout, [`STATE_TIMEOUT`]).
//!
//! They go through the same edge policy (rate limit, methods, admin only) and the same
//! forwarding code as proxied routes: a per-service [`Route`] with a rewrite is chosen after
//! the policy let the request through, then handed to the proxy. `Authorization` goes along,
//! since the services check the admin role themselves too. A missing `service` is a 400, one
//! that is not in [`OPS_SERVICES`] a 404, so nothing can be sent to a service the gateway does
//! not expose (the payment provider stand-in, for one).

use std::{collections::HashMap, net::IpAddr, time::Duration};

use axum::{
    extract::{Query, Request, State},
    response::{IntoResponse, Response},
};
use bazaar_runtime::Problem;
use http::Method;

use crate::{
    proxy,
    routes::{AuthPolicy, Route},
    state::{AppState, Inner},
};

/// The services whose dead letters, breakers and state the gateway exposes: every service
/// with events.
pub const OPS_SERVICES: &[&str] = &[
    "identity",
    "catalog",
    "inventory",
    "payment",
    "order",
    "shipping",
    "notification",
];

/// The public prefix of the dead-letter endpoints.
pub const DEAD_LETTERS: &str = "/api/v1/admin/dead-letters";
/// The public path of the breaker listing.
pub const BREAKERS: &str = "/api/v1/admin/breakers";
/// The public path of a service's whole state (for the consistency checker).
pub const STATE: &str = "/api/v1/admin/state";
/// The upstream timeout of [`STATE`]: a service builds its whole state (up to tens of
/// thousands of orders) before it answers.
pub const STATE_TIMEOUT: Duration = Duration::from_secs(120);

/// The routes behind the operations endpoints, built once.
pub(crate) struct OpsRoutes {
    /// The edge policy of the dead-letter listing (admin, `GET`/`HEAD`).
    list_policy: Route,
    /// The edge policy of a redrive (admin, `POST`).
    redrive_policy: Route,
    /// The edge policy of the breaker listing (admin, `GET`/`HEAD`).
    breakers_policy: Route,
    /// The edge policy of the state (admin, `GET`/`HEAD`).
    state_policy: Route,
    /// Per service: `/api/v1/admin/dead-letters…` → its `/admin/dead-letters…`.
    dead_letters: HashMap<&'static str, Route>,
    /// Per service: `/api/v1/admin/breakers` → its `/admin/breakers`.
    breakers: HashMap<&'static str, Route>,
    /// Per service: `/api/v1/admin/state` → its `/admin/state`.
    state: HashMap<&'static str, Route>,
}

impl OpsRoutes {
    pub(crate) fn new() -> OpsRoutes {
        // The policy routes never forward; their service name only has to be well-formed.
        let policy = |prefix: &str, methods: Vec<Method>| {
            Route::new(prefix, "gateway")
                .auth(AuthPolicy::Admin)
                .methods(methods)
        };
        let per_service = |prefix: &str, rewrite: &str| {
            OPS_SERVICES
                .iter()
                .map(|s| (*s, Route::new(prefix, s).rewrite(rewrite)))
                .collect()
        };
        OpsRoutes {
            list_policy: policy(DEAD_LETTERS, vec![Method::GET, Method::HEAD]),
            redrive_policy: policy(DEAD_LETTERS, vec![Method::POST]),
            breakers_policy: policy(BREAKERS, vec![Method::GET, Method::HEAD]),
            state_policy: policy(STATE, vec![Method::GET, Method::HEAD]),
            dead_letters: per_service(DEAD_LETTERS, "/admin/dead-letters"),
            breakers: per_service(BREAKERS, "/admin/breakers"),
            state: OPS_SERVICES
                .iter()
                .map(|s| {
                    let route = Route::new(STATE, s)
                        .rewrite("/admin/state")
                        .timeout(STATE_TIMEOUT);
                    (*s, route)
                })
                .collect(),
        }
    }
}

/// `GET /api/v1/admin/dead-letters?service=X…`.
pub(crate) async fn dead_letters(State(state): State<AppState>, req: Request) -> Response {
    let inner = &*state.inner;
    let ops = &inner.ops;
    proxy::guarded(inner, &ops.list_policy, req, |req, ip| {
        by_query(inner, &ops.dead_letters, req, ip)
    })
    .await
}

/// `POST /api/v1/admin/dead-letters/{service}/{id}/redrive`.
pub(crate) async fn redrive(State(state): State<AppState>, req: Request) -> Response {
    let inner = &*state.inner;
    let ops = &inner.ops;
    proxy::guarded(inner, &ops.redrive_policy, req, |req, ip| async move {
        let path = req.uri().path();
        if proxy::has_dot_segment(path) {
            return proxy::dot_segments().into_response();
        }
        // The router matched `{service}/{id}/redrive` below the prefix.
        let service = path
            .strip_prefix(DEAD_LETTERS)
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default();
        match ops.dead_letters.get(service) {
            Some(route) => proxy::serve(inner, route, ip, req).await,
            None => Problem::not_found().into_response(),
        }
    })
    .await
}

/// `GET /api/v1/admin/breakers?service=X`.
pub(crate) async fn breakers(State(state): State<AppState>, req: Request) -> Response {
    let inner = &*state.inner;
    let ops = &inner.ops;
    proxy::guarded(inner, &ops.breakers_policy, req, |req, ip| {
        by_query(inner, &ops.breakers, req, ip)
    })
    .await
}

/// `GET /api/v1/admin/state?service=X`.
pub(crate) async fn state(State(state): State<AppState>, req: Request) -> Response {
    let inner = &*state.inner;
    let ops = &inner.ops;
    proxy::guarded(inner, &ops.state_policy, req, |req, ip| {
        by_query(inner, &ops.state, req, ip)
    })
    .await
}

#[derive(serde::Deserialize)]
struct ServiceParam {
    service: Option<String>,
}

/// Forwards to the route of the service named by `?service=`.
async fn by_query(
    inner: &Inner,
    routes: &HashMap<&'static str, Route>,
    req: Request,
    client_ip: IpAddr,
) -> Response {
    let service = match Query::<ServiceParam>::try_from_uri(req.uri()) {
        Ok(Query(ServiceParam { service: Some(s) })) if !s.is_empty() => s,
        Ok(_) => {
            return Problem::malformed("The query parameter `service` is required.").into_response()
        }
        Err(_) => return Problem::malformed("The query string is malformed.").into_response(),
    };
    match routes.get(service.as_str()) {
        Some(route) => proxy::serve(inner, route, client_ip, req).await,
        None => Problem::not_found().into_response(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn every_ops_route_rewrites_to_the_services_admin_path() {
        let ops = OpsRoutes::new();
        for service in OPS_SERVICES {
            let dl = &ops.dead_letters[service];
            assert_eq!(&*dl.upstreams[0].service, *service);
            assert_eq!(dl.upstream_path(DEAD_LETTERS), "/admin/dead-letters");
            assert_eq!(
                dl.upstream_path(&format!("{DEAD_LETTERS}/{service}/7/redrive")),
                format!("/admin/dead-letters/{service}/7/redrive")
            );
            let b = &ops.breakers[service];
            assert_eq!(&*b.upstreams[0].service, *service);
            assert_eq!(b.upstream_path(BREAKERS), "/admin/breakers");
            let st = &ops.state[service];
            assert_eq!(&*st.upstreams[0].service, *service);
            assert_eq!(st.upstream_path(STATE), "/admin/state");
            assert_eq!(st.timeout, STATE_TIMEOUT);
            assert!(STATE_TIMEOUT <= crate::routes::MAX_TIMEOUT);
        }
        assert!(!ops.dead_letters.contains_key("psp"));
        assert!(!ops.state.contains_key("psp"));
        for policy in [
            &ops.list_policy,
            &ops.redrive_policy,
            &ops.breakers_policy,
            &ops.state_policy,
        ] {
            assert_eq!(policy.auth, AuthPolicy::Admin);
        }
    }
}
