//! The one HTTP client the gateway sends every upstream request through.
//!
//! Pooled keep-alive HTTP/1.1 connections (a new TCP handshake per request would cost more
//! than the proxying itself), `TCP_NODELAY` because requests are small and latency-bound, an
//! idle timeout shorter than the services' own so the gateway is the side that closes, and a
//! connect timeout well below any route timeout so a black-holed instance leaves time to try
//! another one.

use std::time::Duration;

use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::{TokioExecutor, TokioTimer},
};

use super::body::UpstreamBody;

/// Idle pooled connections are closed after this long.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per upstream instance.
pub const POOL_MAX_IDLE_PER_HOST: usize = 256;
/// Time allowed to establish a TCP connection to an instance.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The client type.
pub(crate) type UpstreamClient = Client<HttpConnector, UpstreamBody>;

pub(crate) fn build() -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_keepalive(Some(Duration::from_secs(60)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector)
}
