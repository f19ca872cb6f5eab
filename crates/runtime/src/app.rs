//! The HTTP server every service runs on.
//!
//! `App::bind` binds its own listener (port 0 in tests: the OS picks a free port, read it
//! back with [`App::port`]) and `run_until_stopped` serves until the shutdown future
//! resolves, then stops accepting, marks the service as draining, lets in-flight requests
//! finish for up to the drain deadline and closes idle keep-alive connections.

use std::{future::Future, net::SocketAddr, pin::Pin, time::Duration};

use axum::{extract::ConnectInfo, Router};
use hyper::body::Incoming;
use hyper_util::{rt::TokioIo, server::graceful::GracefulShutdown};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::health::Health;

/// Request headers larger than this (in total) are answered 431 by the HTTP layer.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

type BackgroundTask = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// A bound, not yet running, HTTP service, with the background tasks (gRPC server, event
/// relay, consumers, saga workers) that run beside it and stop with it.
pub struct App {
    listener: TcpListener,
    router: Router,
    health: Option<Health>,
    drain_deadline: Duration,
    grpc_addr: Option<SocketAddr>,
    stop: CancellationToken,
    background: Vec<(&'static str, BackgroundTask)>,
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
    ///
    /// With `BAZAAR_REUSE_PORT=1` in the environment the socket is bound with `SO_REUSEPORT`,
    /// so several replicas listen on one address and the kernel spreads new connections
    /// across them (`bazaar up --replicas gateway=2`). Off by default: a second shop started
    /// by mistake on a taken port must fail, not silently share it.
    pub async fn bind(addr: SocketAddr, router: Router) -> anyhow::Result<App> {
        let reuse_port = std::env::var("BAZAAR_REUSE_PORT").is_ok_and(|v| v == "1");
        let listener = bind_listener(addr, reuse_port)
            .map_err(|e| anyhow::anyhow!("cannot bind {addr}: {e}"))?;
        Ok(App {
            listener,
            router,
            health: None,
            drain_deadline: Duration::from_secs(10),
            grpc_addr: None,
            stop: CancellationToken::new(),
            background: Vec::new(),
        })
    }

    /// The token that is cancelled when the app begins to shut down: background work
    /// started before [`App::run_until_stopped`] (consumers, relays) watches it.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Runs `task` beside the HTTP server from [`App::run_until_stopped`] on. The task is
    /// given the stop token, is expected to finish soon after it is cancelled, and is awaited
    /// (for up to the drain deadline) after the HTTP connections have drained. A task that
    /// fails ends the app with its error.
    #[must_use]
    pub fn with_background<F, Fut>(mut self, name: &'static str, task: F) -> Self
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let fut = task(self.stop.clone());
        self.background.push((name, Box::pin(fut)));
        self
    }

    /// Records the address the service's gRPC server is bound to (announced to the registry).
    #[must_use]
    pub fn with_grpc_addr(mut self, addr: SocketAddr) -> Self {
        self.grpc_addr = Some(addr);
        self
    }

    /// The gRPC server's address, if the service has one.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
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
            grpc_addr: _,
            stop,
            background,
        } = self;
        let mut tasks = tokio::task::JoinSet::new();
        for (name, task) in background {
            tasks.spawn(async move { (name, task.await) });
        }
        let mut failure = None;
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
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    match done {
                        Ok((_, Ok(()))) => continue,
                        Ok((name, Err(e))) => failure = Some(e.context(format!("{name} failed"))),
                        Err(e) => failure = Some(anyhow::anyhow!("a background task panicked: {e}")),
                    }
                    break;
                }
            }
        }
        if let Some(h) = &health {
            h.start_draining();
        }
        drop(listener);
        stop.cancel();
        tokio::select! {
            () = graceful.shutdown() => tracing::debug!("All connections drained."),
            () = tokio::time::sleep(drain_deadline) => tracing::warn!("Drain deadline passed; closing connections."),
        }
        let finish = async {
            while let Some(done) = tasks.join_next().await {
                if let Ok((name, Err(e))) = done {
                    tracing::warn!(task = name, error = %format!("{e:#}"), "Background task failed while stopping.");
                }
            }
        };
        if tokio::time::timeout(drain_deadline, finish).await.is_err() {
            tracing::warn!("Background tasks did not stop in time; abandoning them.");
            tasks.abort_all();
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// A listening socket on `addr`, shared with other processes when `reuse_port`.
fn bind_listener(addr: SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // What `TcpListener::bind` does on Unix: a restarted service can bind its port again
    // while connections of the previous process are in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    socket.listen(1024)
}
