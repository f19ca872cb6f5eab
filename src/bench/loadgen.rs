//! The load generator: keep-alive HTTP/1.1 connections issuing GETs back to back.
//!
//! Closed loop: each connection sends its next request as soon as the previous response is
//! read, so the offered load adapts to the server and the figures are throughput at a fixed
//! concurrency. Latency is recorded per 2xx response, in µs, into an HdrHistogram; anything
//! else counts as an error. Requests that start during the warm-up or end after the measured
//! window are not counted.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{header, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::report::{LatencySummary, LoadFigures, UnloadedFigures};

/// Latencies above this (60 s) are clamped; nothing in a healthy run comes near it.
const MAX_LATENCY_US: u64 = 60_000_000;
/// A request still unanswered this long after the window closes is abandoned.
const STRAGGLER_GRACE: Duration = Duration::from_secs(2);
/// Time per request in the unloaded run before it is counted as an error.
const UNLOADED_TIMEOUT: Duration = Duration::from_secs(10);
/// A pause after a failed connect, so a dead target does not turn into a busy loop.
const RECONNECT_PAUSE: Duration = Duration::from_millis(20);

/// What to request: one path on one address, with a bearer token per request taken
/// round-robin from `authorizations` (none when empty).
#[derive(Debug, Clone)]
pub struct Workload {
    pub addr: SocketAddr,
    pub path: String,
    pub authorizations: Arc<[HeaderValue]>,
}

impl Workload {
    pub fn new(addr: SocketAddr, path: &str, authorizations: Arc<[HeaderValue]>) -> Workload {
        Workload {
            addr,
            path: path.to_owned(),
            authorizations,
        }
    }

    fn request(&self, host: &HeaderValue, n: usize) -> anyhow::Result<Request<Empty<Bytes>>> {
        let mut builder = Request::builder()
            .method(Method::GET)
            .uri(self.path.as_str())
            .header(header::HOST, host);
        if !self.authorizations.is_empty() {
            builder = builder.header(
                header::AUTHORIZATION,
                &self.authorizations[n % self.authorizations.len()],
            );
        }
        Ok(builder.body(Empty::new())?)
    }
}

/// Counts of everything that was not a 2xx.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Errors {
    pub by_kind: BTreeMap<String, u64>,
}

impl Errors {
    fn status(&mut self, status: StatusCode) {
        *self.by_kind.entry(status.as_u16().to_string()).or_default() += 1;
    }

    fn failed(&mut self, kind: &str) {
        *self.by_kind.entry(kind.to_owned()).or_default() += 1;
    }

    fn merge(&mut self, other: Errors) {
        for (k, v) in other.by_kind {
            *self.by_kind.entry(k).or_default() += v;
        }
    }

    pub fn total(&self) -> u64 {
        self.by_kind.values().sum()
    }
}

/// Raw results of one run.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub ok: u64,
    pub errors: Errors,
    pub histogram: Histogram<u64>,
    /// The measured window (not including the warm-up).
    pub window: Duration,
}

impl RunResult {
    fn empty(window: Duration) -> anyhow::Result<RunResult> {
        Ok(RunResult {
            ok: 0,
            errors: Errors::default(),
            histogram: new_histogram()?,
            window,
        })
    }

    fn merge(&mut self, other: RunResult) -> anyhow::Result<()> {
        self.ok += other.ok;
        self.errors.merge(other.errors);
        self.histogram
            .add(&other.histogram)
            .context("merge latency histograms")?;
        Ok(())
    }

    pub fn load_figures(&self) -> LoadFigures {
        let secs = self.window.as_secs_f64();
        LoadFigures {
            requests_ok: self.ok,
            requests_per_second: if secs > 0.0 {
                self.ok as f64 / secs
            } else {
                0.0
            },
            latency: LatencySummary::from_histogram(&self.histogram),
            errors: self.errors.total(),
            error_breakdown: self.errors.by_kind.clone(),
            server_cpu: None,
        }
    }

    pub fn unloaded_figures(&self) -> UnloadedFigures {
        UnloadedFigures {
            requests_ok: self.ok,
            latency: LatencySummary::from_histogram(&self.histogram),
            errors: self.errors.total(),
            error_breakdown: self.errors.by_kind.clone(),
        }
    }
}

fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).context("create a latency histogram")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_LATENCY_US)
}

/// One keep-alive connection.
struct Conn {
    sender: SendRequest<Empty<Bytes>>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        // Small requests and responses: Nagle would add tens of ms to every round trip.
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn { sender })
    }

    /// Sends one request and reads the whole body. `Ok(None)` when the server had closed the
    /// idle connection before the request was sent (not an error of the request: reconnect).
    async fn get(
        &mut self,
        req: Request<Empty<Bytes>>,
    ) -> Result<Option<StatusCode>, hyper::Error> {
        if self.sender.ready().await.is_err() {
            return Ok(None);
        }
        let response = self.sender.send_request(req).await?;
        let status = response.status();
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            frame?;
        }
        Ok(Some(status))
    }
}

/// Closed-loop load: `connections` connections for `warmup + duration`, counting the last
/// `duration`. `progress` is called about once a second with the time elapsed.
pub async fn closed_loop(
    workload: &Workload,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    mut progress: impl FnMut(Duration),
) -> anyhow::Result<RunResult> {
    let began = Instant::now();
    let measure_from = began + warmup;
    let until = measure_from + duration;
    let host = HeaderValue::from_str(&workload.addr.to_string())?;
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let workload = workload.clone();
            let host = host.clone();
            tokio::spawn(async move {
                connection_loop(&workload, &host, c, connections, measure_from, until).await
            })
        })
        .collect();
    let mut all = futures::future::try_join_all(tasks);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let results = loop {
        tokio::select! {
            results = &mut all => break results.context("a load connection panicked")?,
            _ = tick.tick() => progress(began.elapsed()),
        }
    };
    let mut total = RunResult::empty(duration)?;
    for r in results {
        total.merge(r?)?;
    }
    Ok(total)
}

async fn connection_loop(
    workload: &Workload,
    host: &HeaderValue,
    index: usize,
    connections: usize,
    measure_from: Instant,
    until: Instant,
) -> anyhow::Result<RunResult> {
    let mut result = RunResult::empty(until - measure_from)?;
    let mut conn: Option<Conn> = None;
    // Connection c sends tokens c, c + C, c + 2C, …: together they cycle through all tokens.
    let mut n = index;
    loop {
        let now = Instant::now();
        if now >= until {
            break;
        }
        let counted_start = now >= measure_from;
        if conn.is_none() {
            match Conn::open(workload.addr).await {
                Ok(c) => conn = Some(c),
                Err(_) => {
                    if counted_start {
                        result.errors.failed("connect");
                    }
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let req = workload.request(host, n)?;
        n += connections;
        let started = Instant::now();
        let outcome = tokio::time::timeout_at((until + STRAGGLER_GRACE).into(), c.get(req)).await;
        let done = Instant::now();
        let counted = counted_start && done <= until;
        match outcome {
            Ok(Ok(Some(status))) if status.is_success() => {
                if counted {
                    result.ok += 1;
                    result.histogram.saturating_record(micros(done - started));
                }
            }
            Ok(Ok(Some(status))) => {
                if counted {
                    result.errors.status(status);
                }
            }
            Ok(Ok(None)) => conn = None,
            Ok(Err(_)) => {
                if counted {
                    result.errors.failed("io");
                }
                conn = None;
            }
            Err(_) => break,
        }
    }
    Ok(result)
}

/// The unloaded run: one connection, `warmup` uncounted requests, then `requests` counted
/// ones, each sent only after the previous answer.
pub async fn sequential(
    workload: &Workload,
    warmup: u64,
    requests: u64,
) -> anyhow::Result<RunResult> {
    let host = HeaderValue::from_str(&workload.addr.to_string())?;
    let began = Instant::now();
    let mut result = RunResult::empty(Duration::ZERO)?;
    let mut conn: Option<Conn> = None;
    let mut i: u64 = 0;
    let mut connect_failures = 0;
    while i < warmup + requests {
        let counted = i >= warmup;
        if conn.is_none() {
            match Conn::open(workload.addr).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    connect_failures += 1;
                    if connect_failures > 50 {
                        return Err(e.context(format!("connect to {}", workload.addr)));
                    }
                    if counted {
                        result.errors.failed("connect");
                    }
                    i += 1;
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let req = workload.request(&host, i as usize)?;
        let started = Instant::now();
        let outcome = tokio::time::timeout(UNLOADED_TIMEOUT, c.get(req)).await;
        let elapsed = started.elapsed();
        match outcome {
            Ok(Ok(Some(status))) if status.is_success() => {
                if counted {
                    result.ok += 1;
                    result.histogram.saturating_record(micros(elapsed));
                }
            }
            Ok(Ok(Some(status))) => {
                if counted {
                    result.errors.status(status);
                }
            }
            // The server closed the idle connection: the request was not sent; send it again.
            Ok(Ok(None)) => {
                conn = None;
                continue;
            }
            Ok(Err(_)) => {
                if counted {
                    result.errors.failed("io");
                }
                conn = None;
            }
            Err(_) => {
                if counted {
                    result.errors.failed("timeout");
                }
                conn = None;
            }
        }
        i += 1;
    }
    result.window = began.elapsed();
    Ok(result)
}

/// One GET, for readiness probes: the status and the body.
pub async fn probe(workload: &Workload) -> anyhow::Result<(StatusCode, Bytes)> {
    let host = HeaderValue::from_str(&workload.addr.to_string())?;
    let mut conn =
        tokio::time::timeout(Duration::from_secs(2), Conn::open(workload.addr)).await??;
    let req = workload.request(&host, 0)?;
    let response = tokio::time::timeout(Duration::from_secs(5), async {
        conn.sender.ready().await?;
        conn.sender.send_request(req).await
    })
    .await??;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn requests_cycle_through_the_tokens() {
        let tokens: Arc<[HeaderValue]> = vec![
            HeaderValue::from_static("Bearer a"),
            HeaderValue::from_static("Bearer b"),
        ]
        .into();
        let w = Workload::new("127.0.0.1:1".parse().unwrap(), "/bench/auth/item", tokens);
        let host = HeaderValue::from_static("127.0.0.1:1");
        let seen: Vec<_> = (0..4)
            .map(|n| w.request(&host, n).unwrap().headers()[header::AUTHORIZATION].clone())
            .collect();
        assert_eq!(seen, ["Bearer a", "Bearer b", "Bearer a", "Bearer b"]);
        let req = w.request(&host, 0).unwrap();
        assert_eq!(req.uri(), "/bench/auth/item");
        assert_eq!(req.headers()[header::HOST], "127.0.0.1:1");
    }

    #[test]
    fn a_workload_without_tokens_sends_no_authorization() {
        let w = Workload::new("127.0.0.1:1".parse().unwrap(), "/x", Arc::from(Vec::new()));
        let req = w.request(&HeaderValue::from_static("h"), 7).unwrap();
        assert!(req.headers().get(header::AUTHORIZATION).is_none());
    }

    #[test]
    fn throughput_counts_only_successes_over_the_measured_window() {
        let mut r = RunResult::empty(Duration::from_secs(4)).unwrap();
        r.ok = 1000;
        r.errors.status(StatusCode::TOO_MANY_REQUESTS);
        r.errors.failed("io");
        let f = r.load_figures();
        assert_eq!(f.requests_per_second, 250.0);
        assert_eq!(f.errors, 2);
        assert_eq!(f.error_breakdown.get("429"), Some(&1));
    }

    #[tokio::test]
    async fn measures_a_real_server_end_to_end() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(super::super::upstream::serve(
            listener,
            Bytes::from_static(b"{\"keys\":[]}"),
        ));
        let w = Workload::new(addr, "/bench/direct/item", Arc::from(Vec::new()));
        let r = sequential(&w, 5, 50).await.unwrap();
        assert_eq!((r.ok, r.errors.total()), (50, 0));
        let r = closed_loop(
            &w,
            4,
            Duration::from_millis(50),
            Duration::from_millis(300),
            |_| {},
        )
        .await
        .unwrap();
        assert!(r.ok > 0);
        assert_eq!(r.errors.total(), 0);
        let (status, body) = probe(&w).await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert!(body.starts_with(b"{\"id\""));
        server.abort();
    }
}
