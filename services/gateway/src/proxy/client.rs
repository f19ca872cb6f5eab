//! The one HTTP client the gateway sends every upstream request through: a small pool of
//! keep-alive HTTP/1.1 connections per upstream address.
//!
//! A new TCP handshake per request would cost more than the proxying itself, so connections
//! are kept. Each connection's future is driven by whoever uses it — the request's own task
//! while the head is awaited, then the response body as it is read — instead of a task of its
//! own: handing every request and every chunk across tasks through channels is what made the
//! generic client expensive and kept the gateway from using all its cores (driving it here
//! measured clearly cheaper per request than a spawned task per connection). A connection goes
//! back to the pool only once its response body was read to the end (else the rest of that
//! body would still be on the wire); a body dropped earlier takes its connection with it.
//!
//! `TCP_NODELAY` because requests are small and latency-bound; an idle timeout shorter than
//! the services' own so the gateway is usually the side that closes; a connect timeout well
//! below any route timeout so a black-holed instance leaves time to try another one. The peer
//! may still close an idle connection just as a request goes out on it: a request that never
//! went out, or an idempotent one without a body, is then sent once more on a fresh connection;
//! anything else may have had an effect upstream and fails.

use std::{
    collections::HashMap,
    future::{poll_fn, Future as _},
    io,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body::{Body as _, Frame, SizeHint};
use hyper::{
    body::Incoming,
    client::conn::http1::{self, Connection, SendRequest},
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::body::UpstreamBody;

/// Idle pooled connections are closed after this long.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per upstream instance.
pub const POOL_MAX_IDLE_PER_HOST: usize = 128;
/// Time allowed to establish a TCP connection to an instance.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

type Conn = Connection<TokioIo<TcpStream>, UpstreamBody>;

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// No connection could be made: nothing was sent, another instance may be tried.
    #[error("could not connect: {0}")]
    Connect(#[source] io::Error),
    /// The request went out (or may have) and failed.
    #[error("upstream request failed: {0}")]
    Request(#[source] hyper::Error),
}

impl SendError {
    /// Whether nothing was sent because no connection could be made.
    pub(crate) fn is_connect(&self) -> bool {
        matches!(self, SendError::Connect(_))
    }
}

/// A live HTTP/1.1 connection: the handle to send on and the future that does the I/O.
struct Pooled {
    sender: SendRequest<UpstreamBody>,
    /// `None` once it ended.
    conn: Option<Conn>,
}

struct Idle {
    pooled: Pooled,
    since: Instant,
}

/// Idle connections per upstream address (`host:port`).
#[derive(Default)]
struct Pool {
    idle: Mutex<HashMap<Box<str>, Vec<Idle>>>,
}

impl Pool {
    /// The most recently used idle connection, which is the likeliest to still be open; stale
    /// ones are dropped on the way.
    fn take(&self, addr: &str) -> Option<Pooled> {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.get_mut(addr)?;
        while let Some(entry) = list.pop() {
            if now.saturating_duration_since(entry.since) < POOL_IDLE_TIMEOUT
                && !entry.pooled.sender.is_closed()
            {
                return Some(entry.pooled);
            }
        }
        None
    }

    fn put(&self, addr: &str, pooled: Pooled) {
        if pooled.sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = match idle.get_mut(addr) {
            Some(list) => list,
            None => idle.entry(Box::from(addr)).or_default(),
        };
        // The oldest are at the front; once one is still fresh, all after it are too.
        let stale = list
            .iter()
            .position(|e| now.saturating_duration_since(e.since) < POOL_IDLE_TIMEOUT)
            .unwrap_or(list.len());
        list.drain(..stale);
        if list.len() >= POOL_MAX_IDLE_PER_HOST {
            list.remove(0);
        }
        list.push(Idle { pooled, since: now });
    }
}

/// The gateway's upstream client. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct UpstreamClient {
    pool: Arc<Pool>,
}

/// A client with an empty pool.
pub(crate) fn build() -> UpstreamClient {
    UpstreamClient::default()
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    )
}

impl UpstreamClient {
    /// Sends `req` to the instance at `addr` (`host:port`); the URI must be origin-form.
    pub(crate) async fn request(
        &self,
        addr: &str,
        req: Request<UpstreamBody>,
    ) -> Result<Response<PooledBody>, SendError> {
        let Some(pooled) = self.pool.take(addr) else {
            let pooled = connect(addr).await?;
            return self.send(addr, pooled, req).await.map_err(|(e, _)| e);
        };
        // A reused connection may have been closed by the peer at any moment; only a request
        // that can safely be sent twice keeps what it needs to be sent again.
        let replay = (is_idempotent(req.method()) && req.body().is_end_stream()).then(|| {
            let mut copy = Request::new(UpstreamBody::empty());
            *copy.method_mut() = req.method().clone();
            *copy.uri_mut() = req.uri().clone();
            *copy.headers_mut() = req.headers().clone();
            copy
        });
        match self.send(addr, pooled, req).await {
            Ok(res) => Ok(res),
            Err((SendError::Request(err), unsent)) if err.is_canceled() || unsent.is_some() => {
                // Not sent at all: any request may go again.
                let Some(again) = unsent.or(replay) else {
                    return Err(SendError::Request(err));
                };
                tracing::debug!(%addr, error = %err, "Pooled connection was closed; sending again on a new one.");
                let pooled = connect(addr).await?;
                self.send(addr, pooled, again).await.map_err(|(e, _)| e)
            }
            Err((SendError::Request(err), _)) if err.is_incomplete_message() => match replay {
                Some(again) => {
                    tracing::debug!(%addr, error = %err, "Pooled connection was closed; sending again on a new one.");
                    let pooled = connect(addr).await?;
                    self.send(addr, pooled, again).await.map_err(|(e, _)| e)
                }
                None => Err(SendError::Request(err)),
            },
            Err((err, _)) => Err(err),
        }
    }

    /// Sends on one connection, driving it until the response head is in. On failure, gives
    /// back the request if it was never written.
    async fn send(
        &self,
        addr: &str,
        pooled: Pooled,
        req: Request<UpstreamBody>,
    ) -> Result<Response<PooledBody>, (SendError, Option<Request<UpstreamBody>>)> {
        let Pooled {
            mut sender,
            mut conn,
        } = pooled;
        // `ready` can only turn true once the connection has been polled past its last
        // exchange, so the two are polled together.
        let ready = poll_fn(|cx| {
            drive(&mut conn, cx);
            sender.poll_ready(cx)
        })
        .await;
        if let Err(err) = ready {
            return Err((SendError::Request(err), Some(req)));
        }
        let mut response = std::pin::pin!(sender.try_send_request(req));
        let res = poll_fn(|cx| {
            drive(&mut conn, cx);
            response.as_mut().poll(cx)
        })
        .await;
        match res {
            Ok(res) => {
                let (parts, body) = res.into_parts();
                let mut body = PooledBody {
                    body,
                    conn: Some((Pooled { sender, conn }, self.pool.clone())),
                    addr: Box::from(addr),
                };
                body.release_if_done();
                Ok(Response::from_parts(parts, body))
            }
            Err(mut err) => {
                let unsent = err.take_message();
                Err((SendError::Request(err.into_error()), unsent))
            }
        }
    }
}

/// Polls the connection future, dropping it once it is done (which fails whatever was
/// waiting on it instead of leaving it pending).
fn drive(conn: &mut Option<Conn>, cx: &mut Context<'_>) {
    if let Some(c) = conn {
        if let Poll::Ready(result) = Pin::new(c).poll(cx) {
            if let Err(err) = result {
                tracing::debug!(error = %err, "Upstream connection ended with an error.");
            }
            *conn = None;
        }
    }
}

async fn connect(addr: &str) -> Result<Pooled, SendError> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => return Err(SendError::Connect(err)),
        Err(_) => {
            return Err(SendError::Connect(io::Error::new(
                io::ErrorKind::TimedOut,
                "connect timed out",
            )))
        }
    };
    stream.set_nodelay(true).map_err(SendError::Connect)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(SendError::Request)?;
    Ok(Pooled {
        sender,
        conn: Some(conn),
    })
}

/// An upstream response body that drives its connection while it is read and hands the
/// connection back to the pool once read to the end.
pub(crate) struct PooledBody {
    body: Incoming,
    /// `None` once the connection went back to the pool, or ended.
    conn: Option<(Pooled, Arc<Pool>)>,
    addr: Box<str>,
}

impl PooledBody {
    fn release_if_done(&mut self) {
        if self.body.is_end_stream() {
            if let Some((pooled, pool)) = self.conn.take() {
                pool.put(&self.addr, pooled);
            }
        }
    }
}

impl http_body::Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Some((pooled, _)) = &mut this.conn {
            // Once the connection is done, its body sender is gone and the body ends (or
            // fails) by itself; the closed sender keeps it out of the pool.
            drive(&mut pooled.conn, cx);
        }
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => {
                if let Some((pooled, pool)) = this.conn.take() {
                    pool.put(&this.addr, pooled);
                }
            }
            Poll::Ready(Some(Ok(_))) => this.release_if_done(),
            Poll::Ready(Some(Err(_))) => this.conn = None,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::body::Body;
    use http_body_util::BodyExt;
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;
    use crate::proxy::body::PendingBody;

    /// What the test upstream does with the n-th request (from 0) on a connection.
    #[derive(Clone, Copy)]
    enum Behavior {
        /// Answers every request with a small body.
        KeepAlive,
        /// Answers with a body of this many bytes, sent in two parts with a pause between.
        Large(usize),
        /// Answers the first request, then closes the connection without a word.
        CloseAfterOne,
        /// Answers the first request; reads the second and closes without answering.
        DropSecond,
    }

    struct Upstream {
        addr: String,
        accepted: Arc<AtomicUsize>,
        requests: Arc<AtomicUsize>,
    }

    /// Reads one request head (and a `Content-Length` body); whether it was a `HEAD`, or
    /// `None` at end of stream.
    async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<bool> {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                while buf.len() < end + 4 + len {
                    let mut chunk = [0u8; 4096];
                    let n = stream.read(&mut chunk).await.ok()?;
                    if n == 0 {
                        return None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                buf.drain(..end + 4 + len);
                return Some(head.starts_with("head "));
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn upstream(behavior: Behavior) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (a, r) = (accepted.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                a.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut n = 0;
                    while let Some(is_head) = read_request(&mut stream, &mut buf).await {
                        r.fetch_add(1, Ordering::SeqCst);
                        match behavior {
                            Behavior::DropSecond if n == 1 => return,
                            Behavior::Large(len) => {
                                let head =
                                    format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n");
                                stream.write_all(head.as_bytes()).await.unwrap();
                                stream.write_all(&vec![b'a'; len / 2]).await.unwrap();
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                if stream.write_all(&vec![b'b'; len - len / 2]).await.is_err() {
                                    return;
                                }
                            }
                            _ => {
                                let res = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                                let len = if is_head { res.len() - 2 } else { res.len() };
                                stream.write_all(&res[..len]).await.unwrap();
                            }
                        }
                        if matches!(behavior, Behavior::CloseAfterOne) {
                            return;
                        }
                        n += 1;
                    }
                });
            }
        });
        Upstream {
            addr,
            accepted,
            requests,
        }
    }

    fn request(method: Method, addr: &str, body: &'static str) -> Request<UpstreamBody> {
        let body = PendingBody::new(Body::from(body), 1 << 20)
            .attempt()
            .unwrap();
        Request::builder()
            .method(method)
            .uri("/thing")
            .header(http::header::HOST, addr)
            .body(body)
            .unwrap()
    }

    async fn get(client: &UpstreamClient, addr: &str) -> Result<Bytes, SendError> {
        let res = client.request(addr, request(Method::GET, addr, "")).await?;
        Ok(res.into_body().collect().await.unwrap().to_bytes())
    }

    #[tokio::test]
    async fn a_connection_whose_response_was_read_to_the_end_is_reused() {
        let up = upstream(Behavior::KeepAlive).await;
        let client = build();
        for _ in 0..5 {
            assert_eq!(get(&client, &up.addr).await.unwrap(), "ok");
        }
        let res = client
            .request(&up.addr, request(Method::POST, &up.addr, "payload"))
            .await
            .unwrap();
        assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "ok");
        assert_eq!(up.accepted.load(Ordering::SeqCst), 1);
        assert_eq!(up.requests.load(Ordering::SeqCst), 6);
    }

    #[tokio::test]
    async fn a_response_without_a_body_frees_its_connection_at_once() {
        let up = upstream(Behavior::KeepAlive).await;
        let client = build();
        for _ in 0..3 {
            let res = client
                .request(&up.addr, request(Method::HEAD, &up.addr, ""))
                .await
                .unwrap();
            assert!(res.body().is_end_stream());
            drop(res);
        }
        assert_eq!(up.accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_whose_body_was_dropped_half_read_is_not_reused() {
        let up = upstream(Behavior::Large(64 * 1024)).await;
        let client = build();
        let res = client
            .request(&up.addr, request(Method::GET, &up.addr, ""))
            .await
            .unwrap();
        let mut body = res.into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert!(first.data_ref().is_some_and(|d| !d.is_empty()));
        drop(body);
        let full = get(&client, &up.addr).await.unwrap();
        assert_eq!(full.len(), 64 * 1024);
        assert_eq!(up.accepted.load(Ordering::SeqCst), 2);
        // The fully read one is reused.
        get(&client, &up.addr).await.unwrap();
        assert_eq!(up.accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_upstream_closing_idle_connections_causes_no_errors_for_gets() {
        let up = upstream(Behavior::CloseAfterOne).await;
        let client = build();
        for _ in 0..20 {
            assert_eq!(get(&client, &up.addr).await.unwrap(), "ok");
            // Let the close arrive, or not: either way the request must succeed.
            tokio::task::yield_now().await;
        }
        assert_eq!(up.requests.load(Ordering::SeqCst), 20);
    }

    #[tokio::test]
    async fn a_get_lost_on_a_reused_connection_is_sent_again_once() {
        let up = upstream(Behavior::DropSecond).await;
        let client = build();
        assert_eq!(get(&client, &up.addr).await.unwrap(), "ok");
        assert_eq!(get(&client, &up.addr).await.unwrap(), "ok");
        assert_eq!(up.accepted.load(Ordering::SeqCst), 2);
        assert_eq!(up.requests.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_post_lost_on_a_reused_connection_is_not_sent_again() {
        let up = upstream(Behavior::DropSecond).await;
        let client = build();
        assert_eq!(get(&client, &up.addr).await.unwrap(), "ok");
        let err = client
            .request(&up.addr, request(Method::POST, &up.addr, "once"))
            .await
            .err()
            .unwrap();
        assert!(!err.is_connect(), "{err}");
        assert_eq!(up.accepted.load(Ordering::SeqCst), 1);
        assert_eq!(up.requests.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let err = get(&build(), &addr).await.err().unwrap();
        assert!(err.is_connect(), "{err}");
    }

    #[tokio::test]
    async fn idle_connections_per_address_are_bounded() {
        let up = upstream(Behavior::KeepAlive).await;
        let client = build();
        let mut open = Vec::new();
        for _ in 0..POOL_MAX_IDLE_PER_HOST + 5 {
            open.push(
                client
                    .request(&up.addr, request(Method::GET, &up.addr, ""))
                    .await
                    .unwrap(),
            );
        }
        for res in open {
            res.into_body().collect().await.unwrap();
        }
        let idle = client.pool.idle.lock().unwrap();
        assert_eq!(idle[up.addr.as_str()].len(), POOL_MAX_IDLE_PER_HOST);
    }
}
