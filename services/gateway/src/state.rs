//! What every request handler of the gateway shares.

use std::{collections::HashMap, sync::Arc};

use bazaar_auth::Verifier;
use bazaar_discovery::{Balancer, Resolver};
use bazaar_runtime::Health;
use bytes::Bytes;

use crate::{
    cache::ResponseCache,
    openapi,
    ops::{OpsRoutes, OPS_SERVICES},
    overview::{Overview, PART_TIMEOUT},
    proxy::{
        client::{self, UpstreamClient},
        telemetry::UpstreamMetrics,
    },
    ratelimit::{InMemoryRateLimiter, RateLimiter, RateLimits},
    routes::RouteTable,
};

/// The gateway's shared state: routes, policies, the upstream client. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("routes", &self.inner.routes.routes().len())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub routes: RouteTable,
    pub resolver: Arc<dyn Resolver>,
    pub verifier: Arc<Verifier>,
    pub limiter: Arc<dyn RateLimiter>,
    pub limits: RateLimits,
    pub cache: Arc<ResponseCache>,
    pub client: UpstreamClient,
    /// One per service: the balancer's statistics are per instance anyway, and separate
    /// tables keep services from contending on one lock.
    pub balancers: HashMap<Arc<str>, Balancer>,
    pub spare_balancer: Balancer,
    pub metrics: UpstreamMetrics,
    pub health: Health,
    /// The merged OpenAPI document, serialized once.
    pub openapi: Bytes,
    /// The routes behind the dead-letter and breaker endpoints.
    pub ops: OpsRoutes,
    /// The parts of `/api/v1/me/overview`.
    pub overview: Overview,
}

impl Inner {
    pub(crate) fn balancer(&self, service: &str) -> &Balancer {
        self.balancers.get(service).unwrap_or(&self.spare_balancer)
    }
}

impl AppState {
    /// State with the in-memory rate limiter.
    pub fn new(
        resolver: Arc<dyn Resolver>,
        verifier: Arc<Verifier>,
        routes: RouteTable,
        limits: RateLimits,
    ) -> anyhow::Result<AppState> {
        Self::with_rate_limiter(
            resolver,
            verifier,
            routes,
            limits,
            Arc::new(InMemoryRateLimiter::new()),
        )
    }

    /// State with another rate limiter (e.g. one shared by several gateways).
    pub fn with_rate_limiter(
        resolver: Arc<dyn Resolver>,
        verifier: Arc<Verifier>,
        routes: RouteTable,
        limits: RateLimits,
        limiter: Arc<dyn RateLimiter>,
    ) -> anyhow::Result<AppState> {
        let openapi = Bytes::from(serde_json::to_vec(&openapi::merged()?)?);
        let mut services = routes.services();
        // The gateway's own endpoints reach these services too.
        for s in OPS_SERVICES {
            if !services.iter().any(|known| &**known == *s) {
                services.push(Arc::from(*s));
            }
        }
        let metrics = UpstreamMetrics::new(&services);
        let balancers = services.into_iter().map(|s| (s, Balancer::new())).collect();
        let inner = Inner {
            routes,
            resolver,
            verifier,
            limiter,
            limits,
            cache: Arc::new(ResponseCache::default()),
            client: client::build(),
            balancers,
            spare_balancer: Balancer::new(),
            metrics,
            health: Health::new(),
            openapi,
            ops: OpsRoutes::new(),
            overview: Overview::new(PART_TIMEOUT),
        };
        Ok(AppState {
            inner: Arc::new(inner),
        })
    }

    /// The gateway's health (readiness turns 503 while draining).
    pub fn health(&self) -> &Health {
        &self.inner.health
    }

    /// The route table in use.
    pub fn routes(&self) -> &RouteTable {
        &self.inner.routes
    }

    /// The response cache.
    pub fn cache(&self) -> &ResponseCache {
        &self.inner.cache
    }
}
