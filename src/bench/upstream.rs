//! The upstream of the gateway bench: a tiny hyper HTTP/1.1 server with fixed answers.
//!
//! It runs as its own process (`bazaar bench upstream`, hidden) so that its CPU time is not
//! mixed with the load generator's, with the same worker threads for every target. Every GET
//! is answered with the same ~300-byte product JSON, whatever the path, so the gateway may
//! forward a route's path with or without its prefix; `/.well-known/jwks.json` answers the
//! bench's public key so the gateway can verify the bench's tokens.

use std::{convert::Infallible, net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use bytes::Bytes;
use clap::Args;
use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use hyper::{server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, process::Command};

use super::process::{bazaar_command, listening_addr, ChildProc};

/// The body of every product answer: the shape of a catalog product, about 300 bytes.
pub const PRODUCT_BODY: &str = concat!(
    r#"{"id":"0190f3c2-7a4e-7b8a-9c1d-2e3f4a5b6c7d","sku":"BENCH-0001","name":"Benchmark Widget","#,
    r#""description":"A fixed product served by the bench upstream, so that every target moves the same bytes.","#,
    r#""category":"bench","price":{"amount_minor":1299,"currency":"USD"},"in_stock":true,"#,
    r#""created_at":"2024-01-01T00:00:00Z"}"#
);

/// The line the upstream prints on stdout once it listens.
const LISTENING_PREFIX: &str = "bazaar-bench-upstream: ";

/// `bazaar bench upstream` (hidden).
#[derive(Debug, Clone, Args)]
pub struct UpstreamArgs {
    /// Port to listen on, on 127.0.0.1 (0: any free port, printed on stdout).
    #[arg(long, default_value_t = 0)]
    pub port: u16,

    /// A JWK Set file served at `/.well-known/jwks.json`.
    #[arg(long)]
    pub jwks_file: Option<PathBuf>,
}

pub async fn run(args: UpstreamArgs) -> anyhow::Result<()> {
    let jwks = match &args.jwks_file {
        Some(path) => {
            Bytes::from(std::fs::read(path).with_context(|| format!("read {}", path.display()))?)
        }
        None => Bytes::from_static(br#"{"keys":[]}"#),
    };
    let listener = TcpListener::bind(("127.0.0.1", args.port))
        .await
        .context("bind the bench upstream")?;
    println!(
        "{LISTENING_PREFIX}upstream listening on {}",
        listener.local_addr()?
    );
    tokio::select! {
        result = serve(listener, jwks) => result,
        () = bazaar_runtime::shutdown::signal() => Ok(()),
        () = parent_gone() => Ok(()),
    }
}

/// Resolves when the bench that started this process is gone, so no upstream outlives it.
async fn parent_gone() {
    let parent = nix::unistd::getppid();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if nix::unistd::getppid() != parent {
            return;
        }
    }
}

/// Serves connections until the listener fails.
pub async fn serve(listener: TcpListener, jwks: Bytes) -> anyhow::Result<()> {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors or a connection reset before accept: keep serving.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let jwks = jwks.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let response = respond(req.method(), req.uri().path(), &jwks);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The fixed answer for a request.
pub fn respond(method: &Method, path: &str, jwks: &Bytes) -> Response<Full<Bytes>> {
    let (status, body) = match (method, path) {
        (&Method::GET, "/.well-known/jwks.json") => (StatusCode::OK, jwks.clone()),
        (&Method::GET, "/livez" | "/readyz") => {
            (StatusCode::OK, Bytes::from_static(br#"{"status":"ok"}"#))
        }
        (&Method::GET, _) => (StatusCode::OK, Bytes::from_static(PRODUCT_BODY.as_bytes())),
        _ => (StatusCode::METHOD_NOT_ALLOWED, Bytes::new()),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Starts `bazaar bench upstream` with `workers` worker threads; returns it and its address.
pub async fn start(
    workers: usize,
    jwks_file: &std::path::Path,
) -> anyhow::Result<(ChildProc, SocketAddr)> {
    let mut cmd: Command = bazaar_command()?;
    cmd.args(["bench", "upstream", "--port", "0", "--jwks-file"])
        .arg(jwks_file);
    cmd.env("TOKIO_WORKER_THREADS", workers.to_string());
    cmd.kill_on_drop(true);
    let mut child = ChildProc::spawn("bench upstream", cmd)?;
    let addr = child
        .wait_for_line(Duration::from_secs(10), |line| {
            listening_addr(line, LISTENING_PREFIX)
        })
        .await?;
    Ok((child, addr))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use http_body_util::BodyExt as _;

    use super::*;

    async fn body(r: Response<Full<Bytes>>) -> Bytes {
        r.into_body().collect().await.unwrap().to_bytes()
    }

    #[test]
    fn the_product_body_is_about_300_bytes_of_json() {
        assert!(
            (250..=350).contains(&PRODUCT_BODY.len()),
            "{} bytes",
            PRODUCT_BODY.len()
        );
        let v: serde_json::Value = serde_json::from_str(PRODUCT_BODY).unwrap();
        assert_eq!(v["price"]["amount_minor"], 1299);
    }

    #[tokio::test]
    async fn every_get_answers_the_product_and_the_jwks_path_answers_the_keys() {
        let jwks = Bytes::from_static(br#"{"keys":[{"kid":"k"}]}"#);
        for path in ["/bench/public/item", "/item", "/"] {
            let r = respond(&Method::GET, path, &jwks);
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
            assert_eq!(body(r).await, PRODUCT_BODY.as_bytes());
        }
        assert_eq!(
            body(respond(&Method::GET, "/.well-known/jwks.json", &jwks)).await,
            jwks
        );
        assert_eq!(
            respond(&Method::POST, "/bench/public/item", &jwks).status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
