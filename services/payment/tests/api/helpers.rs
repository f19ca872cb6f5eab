//! Starting a payment service and its payment provider, and talking to both.

use std::{collections::HashMap, sync::Arc, time::Duration};

use bazaar_auth::{Claims, JwkSet, SigningKey, Verifier};
use bazaar_discovery::{Resolver, StaticResolver};
use bazaar_payment::{build, Settings};
use bazaar_proto::payment::{
    payment_client::PaymentClient, ChargeRequest, ChargeResponse, GetPaymentRequest, PaymentStatus,
    PaymentView, RefundRequest, RefundResponse,
};
use bazaar_resilience::BreakerConfig;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use tonic::{transport::Channel, Status};

/// Runs an async test body once on SQLite and once on PostgreSQL (skipped with a printed
/// reason when `BAZAAR_TEST_POSTGRES_URL` is unset), with the given [`Options`].
macro_rules! both {
    ($name:ident, $options:expr, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: crate::helpers::TestApp) $body

            #[tokio::test]
            async fn on_sqlite() {
                run(crate::helpers::TestApp::spawn(crate::helpers::Backend::Sqlite, $options).await.unwrap()).await;
            }

            #[tokio::test]
            async fn on_postgres() {
                if let Some(app) = crate::helpers::TestApp::spawn(crate::helpers::Backend::Postgres, $options).await {
                    run(app).await;
                }
            }
        }
    };
}
pub(crate) use both;

/// Which database the payment service runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to start a test's services.
#[derive(Debug, Clone)]
pub struct Options {
    /// The payment service's processor timeout.
    pub psp_timeout: Duration,
    /// How late the processor answers `tok_timeout`.
    pub timeout_token_delay: Duration,
    /// The payment service's breaker.
    pub breaker: BreakerConfig,
    /// Find the processor through discovery instead of a configured URL.
    pub discover_psp: bool,
    /// The address of a `shipping` event producer, if the test runs one.
    pub shipping_addr: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            psp_timeout: Duration::from_secs(5),
            timeout_token_delay: Duration::from_secs(30),
            breaker: BreakerConfig::default(),
            discover_psp: false,
            shipping_addr: None,
        }
    }
}

/// A running processor stand-in.
pub struct TestPsp {
    pub base: String,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl TestPsp {
    pub async fn start(key: &SigningKey, timeout_token_delay: Duration) -> TestPsp {
        let dir = tempfile::tempdir().unwrap();
        let app = bazaar_psp::build(bazaar_psp::Settings {
            addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            database_url: None,
            verifier: verifier(key),
            timeout_token_delay,
        })
        .await
        .unwrap();
        let base = format!("http://{}", app.local_addr());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        TestPsp {
            base,
            _dir: dir,
            _stop: tx,
        }
    }

    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }
}

pub fn verifier(key: &SigningKey) -> Arc<Verifier> {
    Arc::new(Verifier::with_keys(JwkSet {
        keys: vec![key.public_jwk()],
    }))
}

/// A running payment service, its processor, and clients for both.
pub struct TestApp {
    /// The payment service's REST port.
    pub base: String,
    pub grpc: PaymentClient<Channel>,
    pub psp: TestPsp,
    pub http: reqwest::Client,
    pub key: SigningKey,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl TestApp {
    /// A payment service on a fresh database with a fresh processor; `None` for PostgreSQL
    /// when no server is configured.
    pub async fn spawn(backend: Backend, options: Options) -> Option<TestApp> {
        bazaar_runtime::telemetry::init_for_tests();
        let database_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(bazaar_store::testing::postgres_template("payment_api")?),
        };
        let key = SigningKey::generate().unwrap();
        let psp = TestPsp::start(&key, options.timeout_token_delay).await;
        let mut services = HashMap::new();
        services.insert("psp".to_owned(), vec![psp.addr().to_owned()]);
        if let Some(addr) = &options.shipping_addr {
            services.insert("shipping".to_owned(), vec![addr.clone()]);
        }
        let resolver: Arc<dyn Resolver> = StaticResolver::new(services);
        let dir = tempfile::tempdir().unwrap();
        let app = build(Settings {
            addr: "127.0.0.1:0".parse().unwrap(),
            grpc_addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            database_url,
            verifier: verifier(&key),
            resolver,
            bus: bazaar_messaging::BusConfig::default(),
            psp_url: (!options.discover_psp).then(|| psp.base.clone()),
            psp_timeout: options.psp_timeout,
            breaker: options.breaker,
        })
        .await
        .unwrap();
        let base = format!("http://{}", app.local_addr());
        let grpc_addr = app.grpc_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        let grpc = PaymentClient::connect(format!("http://{grpc_addr}"))
            .await
            .unwrap();
        Some(TestApp {
            base,
            grpc,
            psp,
            http: reqwest::Client::new(),
            key,
            _dir: dir,
            _stop: tx,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn token(&self, roles: &[&str]) -> String {
        let claims = Claims::new_access(
            &uuid::Uuid::now_v7().to_string(),
            roles.iter().map(|r| (*r).to_owned()).collect(),
            bazaar_auth::unix_now(),
        );
        self.key.sign(&claims).unwrap()
    }

    pub fn admin_token(&self) -> String {
        self.token(&["customer", "admin"])
    }

    /// `Charge` of `amount_minor` USD.
    pub async fn charge(
        &self,
        order_id: &str,
        amount_minor: i64,
        card_token: &str,
    ) -> Result<ChargeResponse, Status> {
        self.grpc
            .clone()
            .charge(ChargeRequest {
                order_id: order_id.to_owned(),
                amount_minor,
                currency: "USD".to_owned(),
                card_token: card_token.to_owned(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// `Charge` that must capture.
    pub async fn charge_captured(&self, order_id: &str, amount_minor: i64) {
        let res = self
            .charge(order_id, amount_minor, "tok_visa")
            .await
            .unwrap();
        assert_eq!(res.status(), PaymentStatus::Captured);
    }

    pub async fn get_payment(&self, order_id: &str) -> PaymentView {
        self.grpc
            .clone()
            .get_payment(GetPaymentRequest {
                order_id: order_id.to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn refund(&self, order_id: &str, reason: &str) -> Result<RefundResponse, Status> {
        self.grpc
            .clone()
            .refund(RefundRequest {
                order_id: order_id.to_owned(),
                reason: reason.to_owned(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// The processor's `GET /admin/stats`.
    pub async fn psp_stats(&self) -> Value {
        let res = self
            .http
            .get(format!("{}/admin/stats", self.psp.base))
            .bearer_auth(self.admin_token())
            .send()
            .await
            .unwrap();
        json_of(res, StatusCode::OK).await
    }

    /// The processor's `PUT /admin/behaviour`.
    pub async fn psp_behave(&self, body: Value) {
        let res = self
            .http
            .put(format!("{}/admin/behaviour", self.psp.base))
            .bearer_auth(self.admin_token())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }

    /// `GET path` on the payment service with `token`.
    pub async fn get_as(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// The payment service's published events about `order_id` (from its feed), after
    /// waiting until at least `at_least` of them are there.
    pub async fn events_for(&self, order_id: &str, at_least: usize) -> Vec<Value> {
        let found = eventually(|| async {
            let page: Value = self
                .http
                .get(self.url("/internal/events?after=0&limit=500"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let events: Vec<Value> = page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["event"].clone())
                .filter(|e| e["subject"] == json!(order_id))
                .collect();
            (events.len() >= at_least).then_some(events)
        })
        .await;
        found
    }
}

/// Polls `check` until it returns `Some` (generous timeout; no timing assertion).
pub async fn eventually<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in time"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Asserts `status` and returns the JSON body.
pub async fn json_of(res: Response, status: StatusCode) -> Value {
    let got = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(got, status, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// A fresh order id.
pub fn order_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The types of `events`, in order.
pub fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}
