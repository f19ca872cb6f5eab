//! Where the instances of a service are: the [`Resolver`] trait and its two implementations.
//!
//! Both answer from a per-service cache that a background task keeps fresh, so resolving is
//! a memory read on the request path; only the very first call for a service may wait (at
//! most [`FIRST_ANSWER_WAIT`]) for the first answer.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use crate::Instance;

mod feed;
mod fixed;
mod registry;

pub use fixed::{StaticResolver, DNS_REFRESH_INTERVAL};
pub use registry::{RegistryResolver, RESTART_GRACE, WATCH_WAIT};

/// The future returned by [`Resolver::resolve`].
pub type ResolveFuture<'a> = Pin<Box<dyn Future<Output = Arc<[Instance]>> + Send + 'a>>;

/// How long the first resolve of a service may wait for the first answer before it returns an
/// empty set (callers then answer 503 rather than hang).
pub const FIRST_ANSWER_WAIT: Duration = Duration::from_secs(1);

/// Where instances of a service are.
pub trait Resolver: Send + Sync + 'static {
    /// Current instances (cached). The first call for a service may wait (≤ 1 s) for the first
    /// answer; later calls return the cache and never touch the network.
    fn resolve<'a>(
        &'a self,
        service: &'a str,
    ) -> Pin<Box<dyn Future<Output = Arc<[Instance]>> + Send + 'a>>;
}

impl<T: Resolver + ?Sized> Resolver for Arc<T> {
    fn resolve<'a>(&'a self, service: &'a str) -> ResolveFuture<'a> {
        (**self).resolve(service)
    }
}
