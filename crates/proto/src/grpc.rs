//! What every gRPC server and client in Bazaar shares.
//!
//! - **Servers** bind with [`GrpcListener::bind`] (port 0 in tests) and [`GrpcListener::serve`]
//!   their routes beside the standard gRPC health service, with a layer that takes the
//!   caller's `traceparent` / `x-request-id` from the metadata into the request context (so
//!   logs and outgoing calls continue the trace) and remembers the caller's deadline
//!   (`grpc-timeout`), which tonic also enforces.
//! - **Clients** get a channel to a healthy instance of a service from [`ServiceChannels`]
//!   (discovery + power-of-two-choices balancing, outcomes fed back to the balancer) and
//!   build requests with [`request`], which adds the trace context and a deadline that never
//!   outlives the caller's own.
//! - Errors cross the edge as problems: [`problem_from_status`].

use std::{
    collections::HashMap,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bazaar_discovery::{Balancer, Resolver};
use bazaar_runtime::{context, Problem, ProblemKind};
use http::StatusCode;
use tokio::net::TcpListener;
use tonic::{
    metadata::MetadataValue,
    service::Routes,
    transport::{server::TcpIncoming, Channel, Endpoint},
    Code, Status,
};

tokio::task_local! {
    static DEADLINE: Option<Instant>;
}

/// The deadline of the gRPC call being served by this task, if its caller set one.
pub fn current_deadline() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok().flatten()
}

/// A bound gRPC listener, not yet serving.
#[derive(Debug)]
pub struct GrpcListener {
    listener: TcpListener,
    addr: SocketAddr,
}

impl GrpcListener {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot bind gRPC {addr}: {e}"))?;
        let addr = listener.local_addr()?;
        Ok(Self { listener, addr })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `routes` and the gRPC health service (reporting `service` and the empty name
    /// as serving) until `stop` is cancelled, then lets in-flight calls finish.
    pub async fn serve(
        self,
        service: &'static str,
        routes: Routes,
        stop: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<()> {
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status(service, tonic_health::ServingStatus::Serving)
            .await;
        reporter
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        let mut incoming = TcpIncoming::from(self.listener);
        incoming = incoming.with_nodelay(Some(true));
        tonic::transport::Server::builder()
            .layer(tower::layer::layer_fn(ContextService))
            .add_routes(routes)
            .add_service(health)
            .serve_with_incoming_shutdown(incoming, async move {
                stop.cancelled().await;
                reporter
                    .set_service_status("", tonic_health::ServingStatus::NotServing)
                    .await;
            })
            .await
            .map_err(|e| anyhow::anyhow!("gRPC server failed: {e}"))
    }
}

/// Server layer: runs each call inside the caller's trace context and deadline.
#[derive(Debug, Clone)]
pub struct ContextService<S>(S);

impl<S, B> tower::Service<http::Request<B>> for ContextService<S>
where
    S: tower::Service<http::Request<B>> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let ctx = context::RequestContext::from_headers(req.headers(), req.uri().path());
        let deadline = req
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout)
            .map(|d| Instant::now() + d);
        let fut = self.0.call(req);
        Box::pin(context::scope(ctx, DEADLINE.scope(deadline, fut)))
    }
}

/// Parses a `grpc-timeout` header value (`<1-8 digits><H|M|S|m|u|n>`).
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    if v.len() < 2 || v.len() > 9 {
        return None;
    }
    let (digits, unit) = v.split_at(v.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// A request carrying the current trace context and a deadline of `timeout`, shortened to
/// what is left of the deadline of the call being served, if that is sooner.
pub fn request<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    let timeout = match current_deadline() {
        Some(d) => timeout.min(d.saturating_duration_since(Instant::now())),
        None => timeout,
    };
    req.set_timeout(timeout);
    context::with_current(|ctx| {
        if let Ok(v) = MetadataValue::try_from(ctx.traceparent()) {
            req.metadata_mut().insert(context::TRACEPARENT, v);
        }
        if let Ok(v) = MetadataValue::try_from(ctx.request_id.as_str()) {
            req.metadata_mut().insert(context::REQUEST_ID, v);
        }
    });
    req
}

/// Channels to the instances of one service, found through discovery and balanced with
/// power-of-two-choices; each call's outcome is reported back so failing instances are
/// ejected and slow ones get less traffic.
#[derive(Clone)]
pub struct ServiceChannels {
    service: Arc<str>,
    resolver: Arc<dyn Resolver>,
    balancer: Arc<Balancer>,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl std::fmt::Debug for ServiceChannels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceChannels")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl ServiceChannels {
    /// Channels to `service`'s instances (those registered with a gRPC address).
    pub fn new(service: &str, resolver: Arc<dyn Resolver>) -> Self {
        Self {
            service: service.into(),
            resolver,
            balancer: Arc::new(Balancer::new()),
            channels: Arc::default(),
        }
    }

    /// The service's name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Runs `call` on a channel to one instance and reports its outcome to the balancer.
    /// `UNAVAILABLE` when no instance is known; a transport error (connection refused or
    /// reset) counts against the instance.
    pub async fn call<T, F, Fut>(&self, call: F) -> Result<T, Status>
    where
        F: FnOnce(Channel) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let instances = self.resolver.resolve(&self.service).await;
        let with_grpc: Vec<_> = instances
            .iter()
            .filter(|i| i.grpc_addr.is_some())
            .cloned()
            .collect();
        let Some(pick) = self.balancer.pick(&with_grpc) else {
            return Err(Status::unavailable(format!(
                "no instance of {} is available",
                self.service
            )));
        };
        let addr = pick.instance().grpc_addr.clone().unwrap_or_default();
        let channel = self.channel(&addr)?;
        let started = Instant::now();
        let result = call(channel).await;
        match &result {
            Ok(_) => pick.success(started.elapsed()),
            Err(s) if is_transport_failure(s) => pick.failure_connect(),
            Err(s) if s.code() == Code::Unavailable => pick.failure(),
            // Application outcomes say nothing about the instance's health.
            Err(_) => pick.success(started.elapsed()),
        }
        result
    }

    fn channel(&self, addr: &str) -> Result<Channel, Status> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = channels.get(addr) {
            return Ok(c.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|_| Status::internal("bad instance address"))?
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(false);
        let channel = endpoint.connect_lazy();
        channels.insert(addr.to_owned(), channel.clone());
        Ok(channel)
    }
}

/// Whether `status` is tonic's report of a failed connection rather than an answer.
fn is_transport_failure(status: &Status) -> bool {
    status.code() == Code::Unavailable
        && std::error::Error::source(status)
            .is_some_and(|s| s.downcast_ref::<tonic::transport::Error>().is_some())
}

/// The problem a client of the public API sees when an internal gRPC call failed. Only
/// the status class crosses: messages from internal services are not shown to clients.
pub fn problem_from_status(status: &Status) -> Problem {
    match status.code() {
        Code::NotFound => Problem::not_found(),
        Code::FailedPrecondition | Code::Aborted | Code::AlreadyExists => {
            Problem::conflict("the request conflicts with the resource's current state")
        }
        Code::DeadlineExceeded => Problem::new(
            ProblemKind::UpstreamTimeout,
            "an internal service did not answer in time",
        ),
        Code::Unavailable | Code::ResourceExhausted => Problem::new(
            ProblemKind::UpstreamUnavailable,
            "an internal service is unavailable; try again shortly",
        )
        .with_retry_after(1),
        _ => Problem::new(
            ProblemKind::UpstreamUnavailable,
            "an internal service failed",
        )
        .with_status(StatusCode::BAD_GATEWAY),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_grpc_timeouts() {
        assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("5u"), Some(Duration::from_micros(5)));
        assert_eq!(parse_grpc_timeout("m"), None);
        assert_eq!(parse_grpc_timeout("123456789m"), None);
        assert_eq!(parse_grpc_timeout("10x"), None);
        assert_eq!(parse_grpc_timeout("-1S"), None);
    }

    #[test]
    fn a_request_carries_a_timeout_no_longer_than_the_callers_deadline() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let deadline = Some(Instant::now() + Duration::from_millis(200));
            DEADLINE
                .scope(deadline, async {
                    let req = request((), Duration::from_secs(5));
                    let t = req
                        .metadata()
                        .get("grpc-timeout")
                        .unwrap()
                        .to_str()
                        .unwrap();
                    let d = parse_grpc_timeout(t).unwrap();
                    assert!(d <= Duration::from_millis(200), "{d:?}");
                })
                .await;
            let req = request((), Duration::from_secs(5));
            let t = req
                .metadata()
                .get("grpc-timeout")
                .unwrap()
                .to_str()
                .unwrap();
            assert_eq!(parse_grpc_timeout(t), Some(Duration::from_secs(5)));
        });
    }

    #[test]
    fn statuses_map_to_problems_without_their_messages() {
        let p = problem_from_status(&Status::unavailable("db at 10.0.0.7 down"));
        assert_eq!(p.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!p.detail().contains("10.0.0.7"));
        assert_eq!(
            problem_from_status(&Status::deadline_exceeded("x")).status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            problem_from_status(&Status::not_found("x")).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            problem_from_status(&Status::failed_precondition("x")).status(),
            StatusCode::CONFLICT
        );
        assert_eq!(
            problem_from_status(&Status::internal("x")).status(),
            StatusCode::BAD_GATEWAY
        );
    }
}
