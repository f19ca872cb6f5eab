//! The HTTP server every service runs on.
//!
//! `App::bind` binds its own listener (port 0 in tests: the OS picks a free port, read it
//! back with [`App::port`]) and `run_until_stopped` serves until the shutdown future
//! resolves, then stops accepting, marks the service as draining, lets in-flight requests
//! finish for up to the drain deadline and closes idle keep-alive connections.

use std::{future::Future, net::SocketAddr, time::Duration};

use axum::{extract::ConnectInfo, Router};
use hyper::body::Incoming;
use hyper_util::{rt::TokioIo, server::graceful::GracefulShutdown};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::health::Health;

/// Request headers larger than this (in total) are answered 431 by the HTTP layer.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// A bound, not yet running, HTTP service.
pub struct App {
    listener: TcpListener,
    router: Router,
    health: Option<Health>,
    drain_deadline: Duration,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("addr", &self.local_addr())
            .finish_non_exhaustive()
    }
}

impl App {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr, router: Router) -> anyhow::Result<App> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot bind {addr}: {e}"))?;
        Ok(App {
            listener,
            router,
            health: None,
            drain_deadline: Duration::from_secs(10),
        })
    }

    /// Marks `health` as draining when shutdown begins.
    #[must_use]
    pub fn with_health(mut self, health: Health) -> Self {
        self.health = Some(health);
        self
    }

    /// How long in-flight requests may take to finish after shutdown begins.
    #[must_use]
    pub fn with_drain_deadline(mut self, d: Duration) -> Self {
        self.drain_deadline = d;
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Serves until `shutdown` resolves, then drains.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let App {
            listener,
            router,
            health,
            drain_deadline,
        } = self;
        let graceful = GracefulShutdown::new();
        let mut http = hyper::server::conn::http1::Builder::new();
        http.max_buf_size(MAX_HEADER_BYTES)
            .keep_alive(true)
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Usually EMFILE: back off instead of spinning.
                            tracing::warn!(error = %e, "Accept failed.");
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let router = router.clone();
                    let svc = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
                        req.extensions_mut().insert(ConnectInfo(peer));
                        router.clone().oneshot(req)
                    });
                    let conn = http.serve_connection(TokioIo::new(stream), svc);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::trace!(error = %e, "Connection ended with an error.");
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        if let Some(h) = &health {
            h.start_draining();
        }
        drop(listener);
        tokio::select! {
            () = graceful.shutdown() => tracing::debug!("All connections drained."),
            () = tokio::time::sleep(drain_deadline) => tracing::warn!("Drain deadline passed; closing connections."),
        }
        Ok(())
    }
}
