//! The Bazaar service registry: which instances of each service are running, and where.
//!
//! Services register an [`Instance`](bazaar_discovery::Instance) and receive a lease with a
//! TTL, renewed by heartbeats; a reaper drops instances whose lease ran out, so a crashed
//! process leaves the set within one TTL. Clients list a service's instances and long-poll for
//! changes with the index they last saw (see [`bazaar_discovery::RegistryClient`]).
//!
//! State is kept in memory on purpose: a restarted registry is empty, refuses the next
//! heartbeat of every instance with 404, and each instance then registers again — the set is
//! rebuilt within one heartbeat interval with no database to operate.
//!
//! **Registration is unauthenticated on purpose**: the registry's port binds to loopback (or a
//! cluster-internal network), where every caller is one of our services; service-to-service
//! authentication (mTLS) is planned and will cover it. Do not expose this port.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let app = bazaar_registry::build(bazaar_registry::Settings::default()).await?;
//! app.run_until_stopped(bazaar_runtime::shutdown::signal()).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

use std::{net::SocketAddr, time::Duration};

use anyhow::bail;
use bazaar_runtime::{App, Health, ServiceStack};

pub mod domain;
pub mod http;
pub mod reaper;
pub mod store;

pub use domain::{DEFAULT_LEASE_TTL, MAX_LEASE_TTL, MIN_LEASE_TTL};
pub use http::{router, AppState};
pub use store::Table;

/// The registry's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to listen (default `127.0.0.1:8090`).
    pub addr: SocketAddr,
    /// How long a lease lasts without a heartbeat (default 10 s, between 300 ms and 1 h).
    pub lease_ttl: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            addr: SocketAddr::from(([127, 0, 0, 1], 8090)),
            lease_ttl: DEFAULT_LEASE_TTL,
        }
    }
}

/// Binds the registry and starts its reaper; ready to run.
pub async fn build(settings: Settings) -> anyhow::Result<App> {
    if settings.lease_ttl < MIN_LEASE_TTL || settings.lease_ttl > MAX_LEASE_TTL {
        bail!(
            "the lease TTL must be between {} ms and {} s, not {} ms",
            MIN_LEASE_TTL.as_millis(),
            MAX_LEASE_TTL.as_secs(),
            settings.lease_ttl.as_millis()
        );
    }
    let health = Health::new();
    let state = AppState::new(settings.lease_ttl, health.clone());
    // The reaper holds the table weakly: it ends when the app (and so the table) is dropped.
    reaper::spawn(state.table());
    let routes = ServiceStack::new("registry", health.clone()).wrap(router(state));
    let app = App::bind(settings.addr, routes).await?.with_health(health);
    tracing::info!(addr = %app.local_addr(), lease_ttl_ms = settings.lease_ttl.as_millis(), "Registry bound.");
    Ok(app)
}
