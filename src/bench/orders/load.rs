//! The closed loop of the orders bench: one keep-alive HTTP/1.1 connection per client, each
//! sending its next request as soon as the previous answer is read.
//!
//! Unlike the gateway bench's generator, requests carry a body and a bearer token per client,
//! and success is decided by looking at the answer (an order counts when it comes back
//! `confirmed`, not merely 201). A request counts when its answer arrives inside the measured
//! window, whenever it was sent: throughput is completions per second of the window, which
//! in a steady state is exact, where counting only requests sent inside the window would
//! under-count by about one latency's worth of work. Its latency (sent → whole answer read)
//! goes into an HdrHistogram in µs; every other outcome is counted by kind.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::super::report::LatencySummary;

/// Latencies above this (60 s) are clamped; the order route itself gives up after 35 s.
const MAX_LATENCY_US: u64 = 60_000_000;
/// A request still unanswered this long after the window closes is abandoned.
const STRAGGLER_GRACE: Duration = Duration::from_secs(1);
/// A pause after a failed connect, so a dead gateway does not turn into a busy loop.
const RECONNECT_PAUSE: Duration = Duration::from_millis(20);

/// How one answer is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// What the phase measures (a confirmed order, a product read).
    Ok,
    /// Anything else, by kind: `"201 pending"`, `"HTTP 503"`, …
    Other(String),
}

/// One kind of request of a closed loop.
pub trait Operation: Send + Sync + 'static {
    /// Request `n` of client `client`.
    fn request(
        &self,
        client: usize,
        n: u64,
        host: &HeaderValue,
    ) -> anyhow::Result<Request<Full<Bytes>>>;

    /// Whether the answer is what the phase measures.
    fn judge(&self, status: StatusCode, body: &[u8]) -> Outcome;

    /// How long one request may take before it counts as `timeout`.
    fn timeout(&self) -> Duration;
}

/// What a closed loop measured inside its window.
#[derive(Debug, Clone)]
pub struct Tally {
    pub ok: u64,
    /// Every outcome other than [`Outcome::Ok`] → count.
    pub others: BTreeMap<String, u64>,
    /// Latency of the [`Outcome::Ok`] answers, µs.
    pub histogram: Histogram<u64>,
    /// The measured window (not including the warm-up).
    pub window: Duration,
}

impl Tally {
    pub fn empty(window: Duration) -> anyhow::Result<Tally> {
        Ok(Tally {
            ok: 0,
            others: BTreeMap::new(),
            histogram: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .context("create a latency histogram")?,
            window,
        })
    }

    fn other(&mut self, kind: &str) {
        *self.others.entry(kind.to_owned()).or_default() += 1;
    }

    fn merge(&mut self, other: Tally) -> anyhow::Result<()> {
        self.ok += other.ok;
        for (k, v) in other.others {
            *self.others.entry(k).or_default() += v;
        }
        self.histogram
            .add(&other.histogram)
            .context("merge latency histograms")
    }

    /// Ok answers per second of the window.
    pub fn per_second(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.ok as f64 / secs
        } else {
            0.0
        }
    }

    /// Every answer that was not ok.
    pub fn not_ok(&self) -> u64 {
        self.others.values().sum()
    }

    pub fn latency(&self) -> LatencySummary {
        LatencySummary::from_histogram(&self.histogram)
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_LATENCY_US)
}

/// One keep-alive connection.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        // Small requests and answers: Nagle would add tens of ms to every round trip.
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn { sender })
    }

    /// Sends one request and reads the whole answer. `Ok(None)` when the server had closed
    /// the idle connection before the request was sent (reconnect and send it again).
    async fn send(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> Result<Option<(StatusCode, Bytes)>, hyper::Error> {
        if self.sender.ready().await.is_err() {
            return Ok(None);
        }
        let response = self.sender.send_request(req).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Some((status, body)))
    }
}

/// Runs `clients` clients for `warmup + duration` and tallies the last `duration`.
/// `progress` is called about once a second with the time elapsed and the ok answers so far
/// (warm-up included).
pub async fn closed_loop<O: Operation>(
    addr: SocketAddr,
    operation: Arc<O>,
    clients: usize,
    warmup: Duration,
    duration: Duration,
    mut progress: impl FnMut(Duration, u64),
) -> anyhow::Result<Tally> {
    let began = Instant::now();
    let measure_from = began + warmup;
    let until = measure_from + duration;
    let host = HeaderValue::from_str(&addr.to_string())?;
    let ok_so_far = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let operation = operation.clone();
            let host = host.clone();
            let ok_so_far = ok_so_far.clone();
            tokio::spawn(async move {
                client_loop(
                    addr,
                    &*operation,
                    &host,
                    client,
                    measure_from,
                    until,
                    &ok_so_far,
                )
                .await
            })
        })
        .collect();
    let mut all = futures::future::try_join_all(tasks);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let results = loop {
        tokio::select! {
            results = &mut all => break results.context("a load client panicked")?,
            _ = tick.tick() => progress(began.elapsed(), ok_so_far.load(Ordering::Relaxed)),
        }
    };
    let mut total = Tally::empty(duration)?;
    for r in results {
        total.merge(r?)?;
    }
    Ok(total)
}

async fn client_loop<O: Operation>(
    addr: SocketAddr,
    operation: &O,
    host: &HeaderValue,
    client: usize,
    measure_from: Instant,
    until: Instant,
    ok_so_far: &AtomicU64,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::empty(until - measure_from)?;
    let mut conn: Option<Conn> = None;
    let mut n: u64 = 0;
    let counted = |at: Instant| at >= measure_from && at <= until;
    while Instant::now() < until {
        if conn.is_none() {
            match Conn::open(addr).await {
                Ok(c) => conn = Some(c),
                Err(_) => {
                    if counted(Instant::now()) {
                        tally.other("connect failed");
                    }
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let req = operation.request(client, n, host)?;
        let started = Instant::now();
        let give_up = (started + operation.timeout()).min(until + STRAGGLER_GRACE);
        let outcome = tokio::time::timeout_at(give_up.into(), c.send(req)).await;
        let done = Instant::now();
        match outcome {
            Ok(Ok(Some((status, body)))) => {
                n += 1;
                match operation.judge(status, &body) {
                    Outcome::Ok => {
                        ok_so_far.fetch_add(1, Ordering::Relaxed);
                        if counted(done) {
                            tally.ok += 1;
                            tally.histogram.saturating_record(micros(done - started));
                        }
                    }
                    Outcome::Other(kind) => {
                        if counted(done) {
                            tally.other(&kind);
                        }
                    }
                }
            }
            // The server closed the idle connection: the request was not sent.
            Ok(Ok(None)) => conn = None,
            Ok(Err(_)) => {
                n += 1;
                if counted(done) {
                    tally.other("connection error");
                }
                conn = None;
            }
            Err(_) => {
                n += 1;
                // Past the window's end this is a straggler, not a timeout of the server.
                if counted(done) {
                    tally.other("timeout");
                }
                conn = None;
            }
        }
    }
    Ok(tally)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn the_rate_counts_only_ok_answers_over_the_window() {
        let mut t = Tally::empty(Duration::from_secs(4)).unwrap();
        t.ok = 1000;
        t.other("HTTP 503");
        t.other("HTTP 503");
        t.other("timeout");
        assert_eq!(t.per_second(), 250.0);
        assert_eq!(t.not_ok(), 3);
        assert_eq!(t.others["HTTP 503"], 2);
    }

    /// POSTs `n` as the body and counts a 200 whose body echoes an even number as ok.
    struct Echo;

    impl Operation for Echo {
        fn request(
            &self,
            client: usize,
            n: u64,
            host: &HeaderValue,
        ) -> anyhow::Result<Request<Full<Bytes>>> {
            Ok(Request::builder()
                .method(Method::POST)
                .uri(format!("/echo/{client}"))
                .header(http::header::HOST, host)
                .body(Full::new(Bytes::from(n.to_string())))?)
        }

        fn judge(&self, status: StatusCode, body: &[u8]) -> Outcome {
            let n: u64 = std::str::from_utf8(body).unwrap().parse().unwrap();
            if status == StatusCode::OK && n.is_multiple_of(2) {
                Outcome::Ok
            } else {
                Outcome::Other(format!("{} odd", status.as_u16()))
            }
        }

        fn timeout(&self) -> Duration {
            Duration::from_secs(5)
        }
    }

    #[tokio::test]
    async fn a_closed_loop_against_a_real_server_tallies_each_outcome() {
        use hyper::{server::conn::http1 as server, service::service_fn};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(server::Builder::new().serve_connection(
                    TokioIo::new(stream),
                    service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let body = req.into_body().collect().await?.to_bytes();
                        Ok::<_, hyper::Error>(http::Response::new(Full::new(body)))
                    }),
                ));
            }
        });
        let ticks = std::sync::Mutex::new(0);
        let tally = closed_loop(
            addr,
            Arc::new(Echo),
            3,
            Duration::from_millis(100),
            Duration::from_millis(400),
            |_, _| *ticks.lock().unwrap() += 1,
        )
        .await
        .unwrap();
        server.abort();
        // Every client alternates even and odd request numbers.
        assert!(tally.ok > 0);
        let odd = tally.others["200 odd"];
        assert!(tally.ok.abs_diff(odd) <= 3, "{} vs {odd}", tally.ok);
        assert_eq!(tally.others.len(), 1, "{:?}", tally.others);
        assert_eq!(tally.latency().count, tally.ok);
        assert!(*ticks.lock().unwrap() >= 1);
    }
}
