//! A gateway on a real socket in front of small upstream servers on real sockets.

use std::{
    collections::HashMap,
    net::SocketAddr,
    pin::Pin,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    response::{IntoResponse, Response},
    routing::{any, get, post},
    Json, Router,
};
use bazaar_auth::{unix_now, Claims, JwkSet, SigningKey, Verifier};
use bazaar_discovery::StaticResolver;
use bazaar_gateway::{RateLimits, RouteTable, Settings};
use http::StatusCode;
use http_body::Frame;
use serde_json::{json, Value};

/// The routes every test gateway serves, in front of the upstreams below.
pub const ROUTES: &str = r#"
[[route]]
prefix = "/api/v1/things"
service = "alpha"

[[route]]
prefix = "/api/v1/things/special"
service = "beta"

[[route]]
prefix = "/api/v1/admin/things"
service = "alpha"
rewrite = "/admin/things"
auth = "admin"

[[route]]
prefix = "/api/v1/mine"
service = "alpha"
auth = "required"

[[route]]
prefix = "/api/v1/slow"
service = "alpha"
rewrite = "/slow"
timeout_ms = 300

[[route]]
prefix = "/api/v1/fail"
service = "alpha"
rewrite = "/fail"

[[route]]
prefix = "/api/v1/big"
service = "alpha"
rewrite = "/big"

[[route]]
prefix = "/api/v1/small"
service = "alpha"
body_limit = 1024

[[route]]
prefix = "/api/v1/json"
service = "alpha"
rewrite = "/json-only"

[[route]]
prefix = "/api/v1/cached"
service = "alpha"
cache_ttl_ms = 60000

[[route]]
prefix = "/api/v1/login"
service = "alpha"
rate_limit = { per_second = 0.01, burst = 1, key = "ip" }

[[route]]
prefix = "/api/v1/get-only"
service = "alpha"
methods = ["GET"]

[[route]]
prefix = "/api/v1/ghost"
service = "ghost"

[[route]]
prefix = "/api/v1/dead"
service = "dead"

[[route]]
prefix = "/api/v1/mixed"
service = "mixed"
"#;

/// One upstream server.
#[derive(Clone)]
pub struct Upstream {
    pub addr: SocketAddr,
    /// Requests whose body was read completely.
    pub completed: Arc<AtomicUsize>,
}

impl Upstream {
    pub fn completed(&self) -> usize {
        self.completed.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct UpstreamState {
    name: &'static str,
    completed: Arc<AtomicUsize>,
}

/// Starts an upstream that echoes requests as JSON, plus a slow, a failing, a big and a
/// JSON-only route.
pub async fn spawn_upstream(name: &'static str) -> Upstream {
    let completed = Arc::new(AtomicUsize::new(0));
    let state = UpstreamState {
        name,
        completed: completed.clone(),
    };
    let app = Router::new()
        .route("/slow", get(slow))
        .route("/fail", any(fail))
        .route("/big", get(big))
        .route("/json-only", post(json_only))
        .route("/", any(echo))
        .route("/{*path}", any(echo))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("upstream addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Upstream { addr, completed }
}

async fn echo(State(state): State<UpstreamState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 1 << 20).await else {
        return (StatusCode::BAD_REQUEST, "broken body").into_response();
    };
    state.completed.fetch_add(1, Ordering::SeqCst);
    let headers: serde_json::Map<String, Value> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                json!(v.to_str().unwrap_or("<binary>")),
            )
        })
        .collect();
    Json(json!({
        "served_by": state.name,
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body_len": body.len(),
        "request_number": state.completed.load(Ordering::SeqCst),
    }))
    .into_response()
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(5)).await;
    "finally"
}

async fn fail() -> Response {
    let body = json!({"type": "urn:bazaar:problem:internal", "title": "Internal error", "status": 500, "detail": "boom"});
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(http::header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

async fn json_only(bazaar_runtime::Json(v): bazaar_runtime::Json<Value>) -> Json<Value> {
    Json(v)
}

/// 1 MiB in 64 chunks of 16 KiB, produced as the client reads.
pub const BIG_CHUNKS: usize = 64;
pub const BIG_CHUNK: usize = 16 * 1024;

async fn big() -> Body {
    Body::new(Chunks { left: BIG_CHUNKS })
}

struct Chunks {
    left: usize,
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        self.left -= 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; BIG_CHUNK])))))
    }
}

/// An address where nothing listens: bound, then released.
pub fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr.to_string()
}

/// A running gateway and what it talks to.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub alpha: Upstream,
    pub beta: Upstream,
    key: SigningKey,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(RateLimits::default()).await
    }

    pub async fn spawn_with(rate_limits: RateLimits) -> TestApp {
        bazaar_runtime::telemetry::init_for_tests();
        let alpha = spawn_upstream("alpha").await;
        let beta = spawn_upstream("beta").await;
        let resolver = StaticResolver::new(HashMap::from([
            ("alpha".to_owned(), vec![alpha.addr.to_string()]),
            ("beta".to_owned(), vec![beta.addr.to_string()]),
            ("dead".to_owned(), vec![closed_port(), closed_port()]),
            (
                "mixed".to_owned(),
                vec![closed_port(), alpha.addr.to_string()],
            ),
        ]));
        let key = SigningKey::generate().expect("key");
        let verifier = Arc::new(Verifier::with_keys(JwkSet {
            keys: vec![key.public_jwk()],
        }));
        let settings = Settings {
            addr: "127.0.0.1:0".parse().expect("addr"),
            resolver,
            verifier,
            routes: RouteTable::from_toml_str(ROUTES).expect("routes"),
            rate_limits,
        };
        let app = bazaar_gateway::build(settings)
            .await
            .expect("build gateway");
        let addr = app.local_addr();
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        TestApp {
            addr,
            client,
            alpha,
            beta,
            key,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    /// A valid access token for `user` with `roles`.
    pub fn token(&self, user: &str, roles: &[&str]) -> String {
        self.sign(&Claims::new_access(
            user,
            roles.iter().map(|r| (*r).to_owned()).collect(),
            unix_now(),
        ))
    }

    /// `claims` signed with the key the gateway trusts.
    pub fn sign(&self, claims: &Claims) -> String {
        self.key.sign(claims).expect("sign")
    }

    pub fn customer(&self, user: &str) -> String {
        self.token(user, &["customer"])
    }

    pub fn admin(&self) -> String {
        self.token("admin-1", &["customer", "admin"])
    }
}

/// Asserts a problem+json answer with `status` and `slug`; returns the body.
pub async fn assert_problem(res: reqwest::Response, status: u16, slug: &str) -> Value {
    assert_eq!(res.status().as_u16(), status);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: Value = res.json().await.expect("problem body");
    assert_eq!(body["type"], format!("urn:bazaar:problem:{slug}"));
    assert_eq!(body["status"], status);
    body
}

/// A JSON echo answer from an upstream.
pub async fn echo_of(res: reqwest::Response) -> Value {
    assert_eq!(res.status().as_u16(), 200, "expected an upstream echo");
    res.json().await.expect("echo body")
}
