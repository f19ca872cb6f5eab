//! A gateway with the default route table in front of stand-ins for every Bazaar service,
//! each on its own loopback socket, for the composed and service-routed endpoints.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use axum::{
    extract::{Request, State},
    response::{IntoResponse, Response},
    routing::any,
    Json, Router,
};
use bazaar_auth::{unix_now, Claims, JwkSet, SigningKey, Verifier};
use bazaar_discovery::StaticResolver;
use bazaar_gateway::{RateLimits, RouteTable, Settings};
use http::StatusCode;
use serde_json::{json, Value};

/// Every service the default table and the gateway's own endpoints can reach, plus the
/// payment provider stand-in, which nothing may reach.
pub const SERVICES: &[&str] = &[
    "identity",
    "catalog",
    "inventory",
    "payment",
    "order",
    "shipping",
    "notification",
    "psp",
];

/// How a stand-in service answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Contract-shaped answers on the overview's paths, an echo of the request elsewhere.
    Ok,
    /// Like `Ok`, after 5 s.
    Slow,
    /// 401: the token is rejected.
    RejectToken,
    /// 500 problem.
    Fail,
    /// 200 with a body that is not JSON.
    BadJson,
}

#[derive(Clone)]
struct ServiceState {
    name: &'static str,
    mode: Mode,
    hits: Arc<AtomicUsize>,
}

/// Starts a stand-in for `name`; returns its address and its request counter.
async fn spawn_service(name: &'static str, mode: Mode) -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let state = ServiceState {
        name,
        mode,
        hits: hits.clone(),
    };
    let app = Router::new()
        .route("/", any(service))
        .route("/{*path}", any(service))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind service");
    let addr = listener.local_addr().expect("service addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, hits)
}

fn header(req: &Request, name: &str) -> Value {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map_or(Value::Null, |v| json!(v))
}

async fn service(State(state): State<ServiceState>, req: Request) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let seen = json!({
        "served_by": state.name,
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "query": req.uri().query(),
        "authorization": header(&req, "authorization"),
        "traceparent": header(&req, "traceparent"),
        "x_request_id": header(&req, "x-request-id"),
    });
    match state.mode {
        Mode::Ok => {}
        Mode::Slow => tokio::time::sleep(Duration::from_secs(5)).await,
        Mode::RejectToken => {
            return problem(StatusCode::UNAUTHORIZED, "unauthorized", "token rejected")
        }
        Mode::Fail => return problem(StatusCode::INTERNAL_SERVER_ERROR, "internal", "boom"),
        Mode::BadJson => {
            return (
                [(http::header::CONTENT_TYPE, "application/json")],
                "{not json",
            )
                .into_response()
        }
    }
    let body = match req.uri().path() {
        "/api/v1/users/me" => json!({
            "id": "user-1",
            "email": "ada@example.com",
            "display_name": "Ada",
            "seen": seen,
        }),
        "/api/v1/orders" => json!({
            "items": [{"id": "order-1", "status": "confirmed", "seen": seen}],
            "next_cursor": null,
        }),
        "/api/v1/me/notifications" => json!({
            "items": [{"id": "n-1", "read": false, "seen": seen}],
            "next_cursor": null,
            "unread": 3,
        }),
        _ => seen,
    };
    Json(body).into_response()
}

fn problem(status: StatusCode, slug: &str, detail: &str) -> Response {
    let body = json!({
        "type": format!("urn:bazaar:problem:{slug}"),
        "title": slug,
        "status": status.as_u16(),
        "detail": detail,
    });
    (
        status,
        [(http::header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

/// A gateway with the default route table and its stand-in services.
pub struct Shop {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    hits: HashMap<&'static str, Arc<AtomicUsize>>,
    key: SigningKey,
}

impl Shop {
    /// Every service up and answering normally.
    pub async fn spawn() -> Shop {
        Self::spawn_with(&[]).await
    }

    /// Every service in `Mode::Ok` except those listed; a service listed with `None` has no
    /// instance at all.
    pub async fn spawn_with(overrides: &[(&'static str, Option<Mode>)]) -> Shop {
        bazaar_runtime::telemetry::init_for_tests();
        let mut map = HashMap::new();
        let mut hits = HashMap::new();
        for name in SERVICES {
            let mode = overrides
                .iter()
                .find(|(n, _)| n == name)
                .map_or(Some(Mode::Ok), |(_, m)| *m);
            if let Some(mode) = mode {
                let (addr, counter) = spawn_service(name, mode).await;
                map.insert((*name).to_owned(), vec![addr.to_string()]);
                hits.insert(*name, counter);
            }
        }
        let key = SigningKey::generate().expect("key");
        let verifier = Arc::new(Verifier::with_keys(JwkSet {
            keys: vec![key.public_jwk()],
        }));
        let app = bazaar_gateway::build(Settings {
            addr: "127.0.0.1:0".parse().expect("addr"),
            resolver: StaticResolver::new(map),
            verifier,
            routes: RouteTable::default(),
            rate_limits: RateLimits::default(),
        })
        .await
        .expect("build gateway");
        let addr = app.local_addr();
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        Shop {
            addr,
            client,
            hits,
            key,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path))
    }

    /// Requests `service` has received.
    pub fn hits(&self, service: &str) -> usize {
        self.hits
            .get(service)
            .map_or(0, |h| h.load(Ordering::SeqCst))
    }

    /// Requests all services have received.
    pub fn total_hits(&self) -> usize {
        self.hits.values().map(|h| h.load(Ordering::SeqCst)).sum()
    }

    pub fn customer(&self) -> String {
        self.token("user-1", &["customer"])
    }

    pub fn admin(&self) -> String {
        self.token("admin-1", &["customer", "admin"])
    }

    fn token(&self, user: &str, roles: &[&str]) -> String {
        let claims = Claims::new_access(
            user,
            roles.iter().map(|r| (*r).to_owned()).collect(),
            unix_now(),
        );
        self.key.sign(&claims).expect("sign")
    }
}
