//! The Bazaar gateway: the one public entry point, an edge policy layer and nothing more.
//!
//! It routes by a declarative [`RouteTable`] (longest path-segment prefix → service, with
//! per-route timeout, auth requirement, rate limit, body limit, cache TTL, method allow-list
//! and canary weights), verifies bearer tokens with the same platform code every service
//! uses, rate-limits per user or client IP with `RateLimit-*` headers, strips client-sent
//! internal headers, adds `X-Forwarded-For`, `X-Request-Id` and `traceparent`, streams
//! bodies both ways through pooled keep-alive connections, caches hot anonymous reads for a
//! moment, and answers every error as RFC 9457 problem+json. It also serves the merged
//! OpenAPI document at `/api/v1/openapi.json` and a page rendering it at `/docs`, composes
//! `/api/v1/me/overview` from three services with partial results when one fails
//! ([`overview`]), and sends the operations endpoints that name a service in the request
//! (`/api/v1/admin/dead-letters?service=X`, `/api/v1/admin/breakers?service=X`) to that
//! service ([`ops`]). Business rules live in the services, never here.
//!
//! ```no_run
//! use std::{collections::HashMap, sync::Arc};
//! use bazaar_auth::{JwkSet, Verifier};
//! use bazaar_discovery::StaticResolver;
//! use bazaar_gateway::{RateLimits, RouteTable, Settings};
//!
//! # async fn run() -> anyhow::Result<()> {
//! let resolver = StaticResolver::new(HashMap::from([("catalog".to_owned(), vec!["127.0.0.1:9001".to_owned()])]));
//! let settings = Settings {
//!     addr: "127.0.0.1:8080".parse()?,
//!     resolver,
//!     verifier: Arc::new(Verifier::with_keys(JwkSet { keys: vec![] })),
//!     routes: RouteTable::default(),
//!     rate_limits: RateLimits::from_env()?,
//! };
//! let app = bazaar_gateway::build(settings).await?;
//! app.run_until_stopped(bazaar_runtime::shutdown::signal()).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

use std::{net::SocketAddr, sync::Arc};

use axum::{
    routing::{any, get},
    Router,
};
use bazaar_auth::Verifier;
use bazaar_discovery::Resolver;
use bazaar_runtime::{App, ServiceStack};

pub mod cache;
mod docs;
pub mod openapi;
pub mod ops;
pub mod overview;
mod proxy;
pub mod ratelimit;
pub mod routes;
mod state;

pub use proxy::MAX_CONNECT_RETRIES;
pub use ratelimit::{InMemoryRateLimiter, Rate, RateError, RateLimiter, RateLimits};
pub use routes::{
    AuthPolicy, RateKeyKind, Route, RouteRateLimit, RouteTable, RouteTableError, Upstream,
};
pub use state::AppState;

/// Everything the gateway needs to start.
pub struct Settings {
    /// Where to listen (`127.0.0.1:8080` by default in `bazaar up`; port 0 in tests).
    pub addr: SocketAddr,
    /// Where the instances of each service are.
    pub resolver: Arc<dyn Resolver>,
    /// Verifies bearer tokens (identity's keys).
    pub verifier: Arc<Verifier>,
    /// The routes ([`RouteTable::default`] or a TOML file).
    pub routes: RouteTable,
    /// Default per-user and per-IP rate limits.
    pub rate_limits: RateLimits,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("addr", &self.addr)
            .field("routes", &self.routes.routes().len())
            .field("rate_limits", &self.rate_limits)
            .finish_non_exhaustive()
    }
}

/// Binds the gateway; run it with [`App::run_until_stopped`].
pub async fn build(settings: Settings) -> anyhow::Result<App> {
    let state = AppState::new(
        settings.resolver,
        settings.verifier,
        settings.routes,
        settings.rate_limits,
    )?;
    let health = state.health().clone();
    let app = App::bind(settings.addr, router(state))
        .await?
        .with_health(health);
    tracing::info!(addr = %app.local_addr(), "Gateway listening.");
    Ok(app)
}

/// The gateway's router, wrapped in the standard service stack.
///
/// The gateway's own endpoints are exact routes; everything else goes to the proxy through
/// catch-all routes (exact routes win over them, and so do the stack's `/livez`, `/readyz`
/// and `/metrics`). Composed endpoints (the BFF's `/api/v1/me/overview`) and routes chosen by
/// something other than the path (`/api/v1/admin/dead-letters?service=`) are exact routes
/// too, with the same edge policy as proxied ones.
pub fn router(state: AppState) -> Router {
    let verifier = state.inner.verifier.clone();
    let stack = ServiceStack::new("gateway", state.health().clone())
        // Verifies any bearer token before routing: an invalid one is refused with 401 on
        // every route, public ones included, and the claims of a valid one reach the proxy's
        // per-route auth policy and the per-user rate limit.
        .with_verifier(verifier);
    let routes = Router::new()
        .route("/api/v1/openapi.json", get(docs::openapi))
        .route("/docs", get(docs::page))
        .route("/docs/docs.js", get(docs::script))
        .route("/docs/docs.css", get(docs::style))
        // Composed and routed by something other than the path; `any` so that the edge policy
        // (rate limit, then methods, then auth) answers wrong methods like on proxied routes.
        .route(overview::PATH, any(overview::handle))
        .route(ops::DEAD_LETTERS, any(ops::dead_letters))
        .route(
            "/api/v1/admin/dead-letters/{service}/{id}/redrive",
            any(ops::redrive),
        )
        .route(ops::BREAKERS, any(ops::breakers))
        .route(ops::STATE, any(ops::state))
        // The proxy. A catch-all rather than the router's fallback, because the stack installs
        // its own 404 fallback; the proxy answers 404 itself for paths no route claims.
        .route("/", any(proxy::handle))
        .route("/{*path}", any(proxy::handle))
        .with_state(state);
    stack.wrap(routes)
}
