//! The network fault proxy behind `bazaar chaos`: a TCP proxy placed in front of one service
//! that passes bytes through, or slows, black-holes or resets them on command.
//!
//! Killing a process only shows how the shop handles a clean, loud failure: the port refuses
//! connections at once. The failures that hurt in production are gray: a dependency that
//! answers slowly, a link that swallows packets so callers hang until their timeouts fire, a
//! middlebox that resets connections in the middle of a call. These machines have no traffic
//! control tools (`tc`, `iptables`), so the proxy makes those faults in user space: callers
//! connect to the proxy instead of the service, and [`FaultHandle::set`] switches the [`Fault`]
//! at run time. Every connection task watches the mode, so a change reaches open connections
//! within milliseconds, not only new ones.
//!
//! Limits: it works at the TCP level and knows nothing of HTTP or gRPC, so it cannot fail one
//! request among many on a shared connection. A delay applies to each chunk the proxy reads,
//! not to each packet; chunks are pipelined (up to [`IN_FLIGHT`] per direction), so a delay adds
//! latency without capping bandwidth much. A black hole stops reading, so the peer's bytes wait
//! in kernel buffers and flow again, intact, when the fault ends, as after a healed partition;
//! the kernel still completes the TCP handshake, so a caller sees a connection that never
//! answers rather than a connect timeout.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{sleep, sleep_until, timeout, Instant};

/// How long a black hole holds a connection before the proxy closes it.
pub const BLACK_HOLE_LIMIT: Duration = Duration::from_secs(30);
/// Chunks read but not yet written, per direction of a connection.
pub const IN_FLIGHT: usize = 64;
/// Largest chunk read at once.
const CHUNK: usize = 16 * 1024;

/// The fault the proxy applies, to new and open connections alike.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Fault {
    /// Pass bytes through unchanged.
    #[default]
    None,
    /// Delay every chunk, in both directions, by `ms` milliseconds after it was read; a new
    /// connection also waits `ms` before the proxy connects upstream.
    Delay {
        /// The added one-way latency in milliseconds.
        ms: u64,
    },
    /// A black hole: forward nothing. New connections are accepted and held open without
    /// reaching the upstream; open connections stop moving bytes. Closed after
    /// [`BLACK_HOLE_LIMIT`] if the fault lasts that long.
    Drop,
    /// Reset (TCP RST) new connections at once and open ones on the spot, both sides.
    Reset,
}

/// Counters since the proxy started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProxyStats {
    /// Client connections accepted.
    pub accepted: u64,
    /// Connections closed with a reset by [`Fault::Reset`].
    pub reset: u64,
    /// New connections held by [`Fault::Drop`].
    pub black_holed: u64,
    /// Bytes written to either side.
    pub bytes_forwarded: u64,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    reset: AtomicU64,
    black_holed: AtomicU64,
    bytes_forwarded: AtomicU64,
}

/// A cheap, clonable handle that switches the fault and reads the counters.
#[derive(Clone)]
pub struct FaultHandle {
    mode: Arc<watch::Sender<Fault>>,
    counters: Arc<Counters>,
}

impl FaultHandle {
    /// Switches the fault; open connections follow within milliseconds.
    pub fn set(&self, fault: Fault) {
        tracing::info!(?fault, "fault proxy mode");
        self.mode.send_replace(fault);
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ProxyStats {
        let c = &self.counters;
        ProxyStats {
            accepted: c.accepted.load(Relaxed),
            reset: c.reset.load(Relaxed),
            black_holed: c.black_holed.load(Relaxed),
            bytes_forwarded: c.bytes_forwarded.load(Relaxed),
        }
    }
}

/// A running proxy. Dropping it stops accepting and closes every connection, as
/// [`FaultProxy::shutdown`] does without waiting.
pub struct FaultProxy {
    local_addr: SocketAddr,
    handle: FaultHandle,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on `listen` (port 0 picks a free port) and forwards each connection to
    /// `upstream`, starting with [`Fault::None`].
    pub async fn start(listen: SocketAddr, upstream: SocketAddr) -> anyhow::Result<FaultProxy> {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("fault proxy cannot listen on {listen}"))?;
        let local_addr = listener.local_addr()?;
        let (mode, mode_rx) = watch::channel(Fault::None);
        let handle = FaultHandle {
            mode: Arc::new(mode),
            counters: Arc::default(),
        };
        let (stop, stop_rx) = oneshot::channel();
        let counters = handle.counters.clone();
        let task = tokio::spawn(accept_loop(listener, upstream, mode_rx, counters, stop_rx));
        tracing::info!(%local_addr, %upstream, "fault proxy started");
        Ok(FaultProxy {
            local_addr,
            handle,
            stop,
            task,
        })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that outlives borrows of the proxy.
    pub fn handle(&self) -> FaultHandle {
        self.handle.clone()
    }

    /// Switches the fault; see [`FaultHandle::set`].
    #[cfg(test)]
    pub fn set(&self, fault: Fault) {
        self.handle.set(fault);
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ProxyStats {
        self.handle.stats()
    }

    /// Stops accepting, closes every connection and waits until the listener is closed.
    pub async fn shutdown(self) {
        let FaultProxy { stop, task, .. } = self;
        let _ = stop.send(());
        let _ = task.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    mode: watch::Receiver<Fault>,
    counters: Arc<Counters>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((client, _peer)) => {
                    counters.accepted.fetch_add(1, Relaxed);
                    conns.spawn(serve(client, upstream, mode.clone(), counters.clone()));
                }
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%err, "fault proxy accept failed");
                    sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next() => {}
        }
    }
    // Aborting the tasks drops their sockets, which closes both sides.
    conns.shutdown().await;
}

/// Closes with an RST instead of a FIN.
fn reset(stream: &TcpStream) {
    if let Err(err) = stream.set_zero_linger() {
        tracing::debug!(%err, "cannot set SO_LINGER 0");
    }
}

async fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    mut mode: watch::Receiver<Fault>,
    counters: Arc<Counters>,
) {
    // A new connection obeys the fault in force before anything reaches the upstream.
    let mut held = false;
    loop {
        let fault = *mode.borrow_and_update();
        match fault {
            Fault::None => break,
            Fault::Delay { ms } => {
                sleep(Duration::from_millis(ms)).await;
                break;
            }
            Fault::Reset => {
                reset(&client);
                counters.reset.fetch_add(1, Relaxed);
                return;
            }
            Fault::Drop => {
                if !held {
                    held = true;
                    counters.black_holed.fetch_add(1, Relaxed);
                }
                let healed = timeout(BLACK_HOLE_LIMIT, mode.wait_for(|f| *f != Fault::Drop));
                if !matches!(healed.await, Ok(Ok(_))) {
                    return;
                }
            }
        }
    }
    let server = match TcpStream::connect(upstream).await {
        Ok(server) => server,
        Err(err) => {
            tracing::warn!(%upstream, %err, "fault proxy cannot reach the upstream");
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    forward(client, server, mode, &counters).await;
}

async fn forward(
    mut client: TcpStream,
    mut server: TcpStream,
    mut mode: watch::Receiver<Fault>,
    counters: &Counters,
) {
    let must_reset = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        let bytes = &counters.bytes_forwarded;
        let up = pipe(client_read, server_write, mode.clone(), bytes);
        let down = pipe(server_read, client_write, mode.clone(), bytes);
        let pumps = async { tokio::try_join!(up, down) };
        tokio::select! {
            done = pumps => {
                if let Err(err) = done {
                    tracing::debug!(%err, "fault proxy connection failed");
                }
                false
            }
            must_reset = watch_faults(&mut mode) => must_reset,
        }
    };
    if must_reset {
        reset(&client);
        reset(&server);
        counters.reset.fetch_add(1, Relaxed);
    }
    // Dropping the sockets closes them: RST after `reset`, FIN otherwise.
}

/// Returns when an open connection must end: `true` for a reset, `false` for a black hole past
/// its limit.
async fn watch_faults(mode: &mut watch::Receiver<Fault>) -> bool {
    loop {
        let fault = *mode.borrow_and_update();
        let changed = match fault {
            Fault::Reset => return true,
            Fault::Drop => match timeout(BLACK_HOLE_LIMIT, mode.changed()).await {
                Ok(changed) => changed,
                Err(_) => return false,
            },
            Fault::None | Fault::Delay { .. } => mode.changed().await,
        };
        if changed.is_err() {
            // The proxy is gone; the connection ends with its task.
            std::future::pending::<()>().await;
        }
    }
}

/// Moves bytes one way: a reader stamps each chunk with the time it was read, a writer writes
/// it once the fault in force allows, so delays overlap instead of adding up.
async fn pipe<R, W>(
    mut from: R,
    mut to: W,
    mode: watch::Receiver<Fault>,
    bytes: &AtomicU64,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, mut chunks) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let mut read_mode = mode.clone();
    let mut write_mode = mode;
    let reading = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            // A black hole reads nothing: the peer's bytes wait in the kernel's buffers.
            if read_mode.wait_for(|f| *f != Fault::Drop).await.is_err() {
                return Ok(());
            }
            let n = tokio::select! {
                n = from.read(&mut buf) => n?,
                Ok(()) = read_mode.changed() => continue,
            };
            if n == 0 || tx.send((Instant::now(), buf[..n].to_vec())).await.is_err() {
                return Ok::<(), std::io::Error>(());
            }
        }
    };
    let writing = async move {
        while let Some((read_at, chunk)) = chunks.recv().await {
            loop {
                let fault = *write_mode.borrow_and_update();
                match fault {
                    Fault::Delay { ms } => tokio::select! {
                        () = sleep_until(read_at + Duration::from_millis(ms)) => break,
                        Ok(()) = write_mode.changed() => {}
                    },
                    Fault::Drop => {
                        if write_mode.changed().await.is_err() {
                            break;
                        }
                    }
                    Fault::None | Fault::Reset => break,
                }
            }
            to.write_all(&chunk).await?;
            bytes.fetch_add(chunk.len() as u64, Relaxed);
        }
        // The reader saw end of stream: pass the half-close on.
        to.shutdown().await
    };
    tokio::try_join!(reading, writing).map(|_| ())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::io::ErrorKind;
    use std::sync::atomic::AtomicUsize;

    /// An echo server that counts the connections it accepts.
    async fn echo() -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepts = Arc::new(AtomicUsize::new(0));
        let count = accepts.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                count.fetch_add(1, Relaxed);
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        (addr, accepts)
    }

    async fn proxy() -> (FaultProxy, Arc<AtomicUsize>) {
        let (upstream, accepts) = echo().await;
        let p = FaultProxy::start("127.0.0.1:0".parse().unwrap(), upstream);
        (p.await.unwrap(), accepts)
    }

    async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
        s.write_all(msg).await?;
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).await?;
        Ok(back)
    }

    /// A reset or an immediate close, within two seconds.
    async fn assert_cut(s: &mut TcpStream) {
        let mut buf = [0u8; 16];
        match timeout(Duration::from_secs(2), s.read(&mut buf)).await {
            Ok(Ok(0)) => {}
            Ok(Err(e)) if matches!(e.kind(), ErrorKind::ConnectionReset) => {}
            other => panic!("expected a reset or a close, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn passes_bytes_through() {
        let (p, _) = proxy().await;
        let mut s = TcpStream::connect(p.local_addr()).await.unwrap();
        assert_eq!(round_trip(&mut s, b"hello").await.unwrap(), b"hello");

        let payload: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
        let (mut r, mut w) = s.into_split();
        let sent = payload.clone();
        let writer = tokio::spawn(async move { w.write_all(&sent).await.unwrap() });
        let mut back = vec![0u8; payload.len()];
        r.read_exact(&mut back).await.unwrap();
        writer.await.unwrap();
        assert!(back == payload, "the 1 MB payload came back changed");
        assert_eq!(p.stats().accepted, 1);
        assert!(p.stats().bytes_forwarded >= 2 * (payload.len() as u64 + 5));
    }

    #[tokio::test]
    async fn delay_adds_latency_both_ways() {
        let (p, _) = proxy().await;
        let mut open = TcpStream::connect(p.local_addr()).await.unwrap();
        round_trip(&mut open, b"warm").await.unwrap();
        p.set(Fault::Delay { ms: 200 });

        let started = std::time::Instant::now();
        assert_eq!(round_trip(&mut open, b"ping").await.unwrap(), b"ping");
        assert!(started.elapsed() >= Duration::from_millis(400));

        let started = std::time::Instant::now();
        let mut fresh = TcpStream::connect(p.local_addr()).await.unwrap();
        assert_eq!(round_trip(&mut fresh, b"ping").await.unwrap(), b"ping");
        assert!(started.elapsed() >= Duration::from_millis(400));
    }

    #[tokio::test]
    async fn drop_black_holes_until_healed() {
        let (p, accepts) = proxy().await;
        let mut open = TcpStream::connect(p.local_addr()).await.unwrap();
        round_trip(&mut open, b"warm").await.unwrap();
        p.set(Fault::Drop);
        let stalled = timeout(Duration::from_millis(500), round_trip(&mut open, b"ping")).await;
        assert!(stalled.is_err(), "a black hole answered: {stalled:?}");
        let mut held = TcpStream::connect(p.local_addr()).await.unwrap();
        held.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        let read = timeout(Duration::from_millis(500), held.read_exact(&mut buf)).await;
        assert!(read.is_err(), "a black hole answered: {read:?}");
        assert_eq!(
            accepts.load(Relaxed),
            1,
            "the held connection reached the upstream"
        );
        assert_eq!(p.stats().black_holed, 1);

        p.set(Fault::None);
        let mut fresh = TcpStream::connect(p.local_addr()).await.unwrap();
        assert_eq!(round_trip(&mut fresh, b"pong").await.unwrap(), b"pong");
        // The held connection heals too, its bytes intact.
        timeout(Duration::from_secs(2), held.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"ping");
    }

    #[tokio::test]
    async fn reset_refuses_new_connections() {
        let (p, accepts) = proxy().await;
        p.set(Fault::Reset);
        let mut s = TcpStream::connect(p.local_addr()).await.unwrap();
        let _ = s.write_all(b"hello").await;
        assert_cut(&mut s).await;
        assert_eq!(accepts.load(Relaxed), 0, "the request reached the upstream");
        assert_eq!(p.stats().reset, 1);
        assert_eq!(p.stats().bytes_forwarded, 0);
    }

    #[tokio::test]
    async fn reset_cuts_open_connections() {
        let (p, _) = proxy().await;
        let mut s = TcpStream::connect(p.local_addr()).await.unwrap();
        round_trip(&mut s, b"before").await.unwrap();
        p.set(Fault::Reset);
        assert_cut(&mut s).await;
        assert_eq!(p.stats().reset, 1);
    }

    #[tokio::test]
    async fn shutdown_closes_everything() {
        let (p, _) = proxy().await;
        let addr = p.local_addr();
        let mut s = TcpStream::connect(addr).await.unwrap();
        round_trip(&mut s, b"before").await.unwrap();
        p.shutdown().await;
        assert_cut(&mut s).await;
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
