//! Starting a processor on a throw-away database and talking to it.

use std::{sync::Arc, time::Duration};

use bazaar_auth::{Claims, JwkSet, SigningKey, Verifier};
use bazaar_psp::{build, Settings};
use reqwest::{header, Response, StatusCode};
use serde_json::{json, Value};

/// Runs an async test body once on SQLite and once on PostgreSQL (skipped with a printed
/// reason when `BAZAAR_TEST_POSTGRES_URL` is unset).
macro_rules! both {
    ($name:ident, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: crate::helpers::TestApp) $body

            #[tokio::test]
            async fn on_sqlite() {
                run(crate::helpers::TestApp::spawn(crate::helpers::Backend::Sqlite).await.unwrap()).await;
            }

            #[tokio::test]
            async fn on_postgres() {
                if let Some(app) = crate::helpers::TestApp::spawn(crate::helpers::Backend::Postgres).await {
                    run(app).await;
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

/// A database that outlives the processors started on it (to test restarts).
pub struct TestDb {
    dir: tempfile::TempDir,
    url: Option<String>,
}

impl TestDb {
    /// `None` for PostgreSQL when no server is configured.
    pub fn new(backend: Backend) -> Option<TestDb> {
        bazaar_runtime::telemetry::init_for_tests();
        let url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(bazaar_store::testing::postgres_template("psp_api")?),
        };
        Some(TestDb {
            dir: tempfile::tempdir().unwrap(),
            url,
        })
    }
}

/// A running processor and a client for it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub key: SigningKey,
    pub db: Arc<TestDb>,
    /// Stops the app when sent to or dropped.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestApp {
    /// A processor on a fresh database; `None` for PostgreSQL when no server is configured.
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        let db = Arc::new(TestDb::new(backend)?);
        Some(
            TestApp::start(
                db,
                SigningKey::generate().unwrap(),
                Duration::from_millis(300),
            )
            .await,
        )
    }

    /// Another processor on `db` (a restart).
    pub async fn start(db: Arc<TestDb>, key: SigningKey, timeout_token_delay: Duration) -> TestApp {
        let verifier = Arc::new(Verifier::with_keys(JwkSet {
            keys: vec![key.public_jwk()],
        }));
        let app = build(Settings {
            addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: db.dir.path().to_path_buf(),
            database_url: db.url.clone(),
            verifier,
            timeout_token_delay,
        })
        .await
        .unwrap();
        let base = format!("http://{}", app.local_addr());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        TestApp {
            base,
            client: reqwest::Client::new(),
            key,
            db,
            stop: Some(tx),
        }
    }

    /// Stops this processor (its port stops accepting).
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
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

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// `POST /v1/charges`.
    pub async fn charge(&self, key: &str, amount_minor: i64, card_token: &str) -> Response {
        self.post(
            "/v1/charges",
            &json!({
                "idempotency_key": key,
                "amount_minor": amount_minor,
                "currency": "USD",
                "card_token": card_token,
            }),
        )
        .await
    }

    /// `POST /v1/refunds`.
    pub async fn refund(&self, key: &str, charge_key: &str, amount_minor: i64) -> Response {
        self.post(
            "/v1/refunds",
            &json!({
                "idempotency_key": key,
                "charge_idempotency_key": charge_key,
                "amount_minor": amount_minor,
            }),
        )
        .await
    }

    /// `PUT /admin/behaviour` as an admin, expecting 200.
    pub async fn behave(&self, body: Value) {
        let res = self
            .client
            .put(self.url("/admin/behaviour"))
            .bearer_auth(self.admin_token())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{}",
            res.text().await.unwrap()
        );
    }

    /// `GET /admin/stats` as an admin.
    pub async fn stats(&self) -> Value {
        let res = self
            .client
            .get(self.url("/admin/stats"))
            .bearer_auth(self.admin_token())
            .send()
            .await
            .unwrap();
        json_of(res, StatusCode::OK).await
    }
}

/// Asserts `status` and returns the JSON body.
pub async fn json_of(res: Response, status: StatusCode) -> Value {
    let got = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(got, status, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Asserts a problem+json answer of `status` and returns its body.
pub async fn problem(res: Response, status: StatusCode) -> Value {
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = json_of(res, status).await;
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    body
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
