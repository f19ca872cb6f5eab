//! Service discovery for Bazaar: where the instances of a service are, and which one to call.
//!
//! Services start on any port and announce themselves to the registry with a
//! [`Registration`], which holds a TTL lease by heartbeating and re-registers whenever the
//! registry has forgotten it (a restarted registry is repopulated this way). Callers ask a
//! [`Resolver`] for the current instances of a service — a [`RegistryResolver`] long-polls the
//! registry and keeps the last known set through registry outages, a [`StaticResolver`] reads
//! fixed addresses or DNS names (Kubernetes headless Services) — and let a [`Balancer`] choose
//! one by power-of-two-choices over in-flight requests, ejecting instances that keep failing.
//!
//! ```no_run
//! use bazaar_discovery::{Balancer, Instance, Registration, RegistryClient, RegistryResolver, Resolver};
//!
//! # async fn run() {
//! let client = RegistryClient::new("http://127.0.0.1:8090");
//! let me = Instance::new("catalog", "catalog-1", "127.0.0.1:41234");
//! let registration = Registration::start(client.clone(), me).await;
//!
//! let resolver = RegistryResolver::new(client);
//! let balancer = Balancer::new();
//! let instances = resolver.resolve("identity").await;
//! if let Some(pick) = balancer.pick(&instances) {
//!     let started = std::time::Instant::now();
//!     // ... call http://{pick.instance().http_addr} ...
//!     pick.success(started.elapsed());
//! }
//! registration.stop().await;
//! # }
//! ```
#![forbid(unsafe_code)]

mod balancer;
mod client;
mod error;
mod instance;
mod jwks;
mod registration;
mod resolver;

pub use balancer::{Balancer, Pick, EJECTION_TIME, FAILURES_TO_EJECT};
pub use client::{HeartbeatOutcome, Lease, RegistryClient, REQUEST_TIMEOUT};
pub use error::DiscoveryError;
pub use instance::{AllInstances, Instance, LeaseGrant, RegisteredInstance, ServiceInstances};
pub use jwks::{jwks_source, IDENTITY_SERVICE, JWKS_PATH};
pub use registration::Registration;
pub use resolver::{
    RegistryResolver, ResolveFuture, Resolver, StaticResolver, DNS_REFRESH_INTERVAL,
    FIRST_ANSWER_WAIT, RESTART_GRACE, WATCH_WAIT,
};
