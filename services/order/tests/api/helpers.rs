//! Starting the order service for real (HTTP + gRPC on 127.0.0.1:0) against fake catalog,
//! inventory and payment servers, on a throw-away database.

use std::{
    collections::HashMap,
    future::Future,
    net::SocketAddr,
    sync::{Arc, RwLock},
    time::Duration,
};

use bazaar_auth::{Claims, JwkSet, SigningKey, Verifier};
use bazaar_discovery::{Instance, ResolveFuture, Resolver};
use bazaar_order::{build, BusConfig, SagaConfig, Settings};
use bazaar_proto::order::{order_client::OrderClient, ClaimRequest};
use reqwest::{header, Response, StatusCode};
use serde_json::{json, Value};

pub use crate::fakes::{FakeProducer, Fakes};

/// Runs an async test body once on SQLite and once on PostgreSQL (skipped with a printed
/// reason when `BAZAAR_TEST_POSTGRES_URL` is unset).
macro_rules! both {
    ($name:ident, |$env:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($env: crate::helpers::Env) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                run(crate::helpers::Env::new(crate::helpers::Backend::Sqlite).await.unwrap()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                if let Some(env) = crate::helpers::Env::new(crate::helpers::Backend::Postgres).await {
                    run(env).await;
                }
            }
        }
    };
}
pub(crate) use both;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A resolver the test fills in as it starts things.
#[derive(Default)]
pub struct TestResolver {
    services: RwLock<HashMap<String, Vec<Instance>>>,
}

impl TestResolver {
    pub fn add(&self, service: &str, http: SocketAddr, grpc: Option<SocketAddr>) {
        let mut i = Instance::new(service, format!("{service}-{http}"), http.to_string());
        i.grpc_addr = grpc.map(|a| a.to_string());
        self.services
            .write()
            .unwrap()
            .entry(service.to_owned())
            .or_default()
            .push(i);
    }

    pub fn remove(&self, service: &str, http: SocketAddr) {
        if let Some(list) = self.services.write().unwrap().get_mut(service) {
            list.retain(|i| i.http_addr != http.to_string());
        }
    }
}

impl Resolver for TestResolver {
    fn resolve<'a>(&'a self, service: &'a str) -> ResolveFuture<'a> {
        let list = self
            .services
            .read()
            .unwrap()
            .get(service)
            .cloned()
            .unwrap_or_default();
        Box::pin(async move { Arc::from(list) })
    }
}

/// Product ids the fake catalog knows: (id, sku, price).
pub const P1: (&str, &str, i64) = ("01900000-0000-7000-8000-0000000000a1", "SKU-1", 1299);
pub const P2: (&str, &str, i64) = ("01900000-0000-7000-8000-0000000000a2", "SKU-2", 500);

/// Saga timing for tests: short timeouts, backoffs and leases.
pub fn test_saga() -> SagaConfig {
    SagaConfig {
        step_timeout: Duration::from_millis(1000),
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        max_attempts_per_step: 30,
        lease: Duration::from_secs(4),
        poll_interval: Duration::from_millis(50),
    }
}

/// The bus configuration of tests (feeds, short long-polls).
pub fn test_bus() -> BusConfig {
    BusConfig {
        feed_wait: Duration::from_secs(2),
        ..BusConfig::default()
    }
}

/// Everything one test runs against: fakes, a resolver, a database, a signing key.
pub struct Env {
    pub fakes: Fakes,
    pub resolver: Arc<TestResolver>,
    pub dir: tempfile::TempDir,
    pub url: Option<String>,
    pub key: Arc<SigningKey>,
    pub saga: SagaConfig,
    pub payment_pending_deadline: Duration,
}

impl Env {
    /// `None` for PostgreSQL when no server is configured.
    pub async fn new(backend: Backend) -> Option<Env> {
        bazaar_runtime::telemetry::init_for_tests();
        let url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(bazaar_store::testing::postgres_template("order_api")?),
        };
        let fakes = Fakes::start().await;
        fakes.catalog.add(P1.0, P1.1, "Moka pot", P1.2);
        fakes.catalog.add(P2.0, P2.1, "Coffee beans", P2.2);
        let resolver = Arc::new(TestResolver::default());
        for service in ["catalog", "inventory", "payment"] {
            resolver.add(service, fakes.addr, Some(fakes.addr));
        }
        Some(Env {
            fakes,
            resolver,
            dir: tempfile::tempdir().unwrap(),
            url,
            key: Arc::new(SigningKey::generate().unwrap()),
            saga: test_saga(),
            payment_pending_deadline: Duration::from_secs(60),
        })
    }

    /// Starts an order service instance on the environment's database.
    pub async fn start(&self, instance_id: &str) -> TestApp {
        let verifier = Arc::new(Verifier::with_keys(JwkSet {
            keys: vec![self.key.public_jwk()],
        }));
        let app = build(Settings {
            addr: "127.0.0.1:0".parse().unwrap(),
            grpc_addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: self.dir.path().to_path_buf(),
            database_url: self.url.clone(),
            verifier,
            resolver: self.resolver.clone(),
            bus: test_bus(),
            payment_pending_deadline: self.payment_pending_deadline,
            saga: self.saga.clone(),
            instance_id: instance_id.to_owned(),
        })
        .await
        .unwrap();
        let http = app.local_addr();
        let grpc = app.grpc_addr().unwrap();
        self.resolver.add("order", http, Some(grpc));
        let task = tokio::spawn(app.run_until_stopped(std::future::pending()));
        TestApp {
            base: format!("http://{http}"),
            http,
            grpc,
            client: reqwest::Client::new(),
            key: self.key.clone(),
            resolver: self.resolver.clone(),
            task,
        }
    }

    /// A producer of another service's events, registered with the resolver.
    pub async fn producer(&self, service: &'static str) -> FakeProducer {
        let dir = self.dir.path().join(format!("producer-{service}"));
        let p = FakeProducer::start(service, &dir, self.resolver.clone()).await;
        self.resolver.add(service, p.addr, None);
        p
    }
}

/// A running order service instance. Dropping it kills it (its tasks are aborted mid-flight).
pub struct TestApp {
    pub base: String,
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    pub client: reqwest::Client,
    key: Arc<SigningKey>,
    resolver: Arc<TestResolver>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.task.abort();
        self.resolver.remove("order", self.http);
    }
}

/// A user of the shop with a token.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub token: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn token_for(&self, id: &str, roles: &[&str]) -> String {
        let claims = Claims::new_access(
            id,
            roles.iter().map(|r| (*r).to_owned()).collect(),
            bazaar_auth::unix_now(),
        );
        self.key.sign(&claims).unwrap()
    }

    pub fn customer(&self) -> User {
        let id = uuid::Uuid::now_v7().to_string();
        User {
            token: self.token_for(&id, &["customer"]),
            id,
        }
    }

    pub fn same_user(&self, user: &User) -> User {
        self.user(&user.id)
    }

    /// The customer with id `id`.
    pub fn user(&self, id: &str) -> User {
        User {
            id: id.to_owned(),
            token: self.token_for(id, &["customer"]),
        }
    }

    pub fn admin(&self) -> User {
        let id = uuid::Uuid::now_v7().to_string();
        User {
            token: self.token_for(&id, &["customer", "admin"]),
            id,
        }
    }

    /// `POST /api/v1/orders` with `key` and extra headers.
    pub async fn place_with(
        &self,
        user: &User,
        key: Option<&str>,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut req = self
            .client
            .post(self.url("/api/v1/orders"))
            .bearer_auth(&user.token)
            .json(body);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        req.send().await.unwrap()
    }

    /// Places an order (fresh key) and returns it; panics unless 201.
    pub async fn place_ok(&self, user: &User, body: &Value) -> Value {
        let key = uuid::Uuid::new_v4().to_string();
        let res = self.place_with(user, Some(&key), body, &[]).await;
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    pub async fn get(&self, user: &User, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(&user.token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, user: &User, path: &str) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(&user.token)
            .send()
            .await
            .unwrap()
    }

    /// `GET /api/v1/orders/{id}` expecting 200.
    pub async fn order(&self, user: &User, id: &str) -> Value {
        let res = self.get(user, &format!("/api/v1/orders/{id}")).await;
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    /// Waits until the order's status is `status`; returns the order.
    pub async fn wait_status(&self, user: &User, id: &str, status: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let last = self.order(user, id).await;
            if last["status"] == status {
                return last;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "order {id} never became {status}: {last:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The saga of `id` from the admin API.
    pub async fn saga(&self, id: &str) -> Value {
        let admin = self.admin();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                None => "/api/v1/admin/sagas?limit=100".to_owned(),
                Some(c) => format!("/api/v1/admin/sagas?limit=100&cursor={c}"),
            };
            let page: Value = self.get(&admin, &path).await.json().await.unwrap();
            if let Some(s) = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["order_id"] == id)
            {
                return s.clone();
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => panic!("no saga for order {id}"),
            }
        }
    }

    /// gRPC `ClaimForShipment`: (claimed, order_status).
    pub async fn claim(&self, order_id: &str) -> Result<(bool, String), tonic::Status> {
        let mut c = OrderClient::connect(format!("http://{}", self.grpc))
            .await
            .unwrap();
        c.claim_for_shipment(ClaimRequest {
            order_id: order_id.to_owned(),
            shipment_id: "shp-1".to_owned(),
        })
        .await
        .map(|r| {
            let r = r.into_inner();
            (r.claimed, r.order_status)
        })
    }
}

/// A valid order body for `lines` of `(product_id, quantity)`.
pub fn body(lines: &[(&str, i64)], card_token: &str) -> Value {
    json!({
        "items": lines.iter().map(|(p, q)| json!({"product_id": p, "quantity": q})).collect::<Vec<_>>(),
        "shipping_address": {"name": "Ada Lovelace", "line1": "1 Analytical St", "line2": null,
                             "city": "London", "postal_code": "N1 9GU", "country": "GB"},
        "payment": {"card_token": card_token},
    })
}

/// Polls `check` until it holds (generous timeout); false if it never did.
pub async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `check` until it yields a value (generous timeout).
pub async fn eventually_some<T, F, Fut>(mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts a problem+json answer of `status` and returns its body.
pub async fn problem(res: Response, status: StatusCode) -> Value {
    let got = res.status();
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = res.text().await.unwrap();
    assert_eq!(got, status, "{body}");
    assert_eq!(
        content_type.as_deref(),
        Some("application/problem+json"),
        "{body}"
    );
    serde_json::from_str(&body).unwrap()
}

/// The pointers of a validation problem, in order.
pub fn pointers(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap().to_owned())
        .collect()
}

/// The statuses of an order's history.
pub fn history(order: &Value) -> Vec<String> {
    order["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap().to_owned())
        .collect()
}
