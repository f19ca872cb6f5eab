//! Starting a catalog on a throw-away database and talking to it.

use std::sync::Arc;

use bazaar_auth::{Claims, JwkSet, SigningKey, Verifier};
use bazaar_catalog::{build, Settings};
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
                run(crate::helpers::TestApp::spawn(crate::helpers::Backend::Sqlite, false).await.unwrap()).await;
            }

            #[tokio::test]
            async fn on_postgres() {
                if let Some(app) = crate::helpers::TestApp::spawn(crate::helpers::Backend::Postgres, false).await {
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

/// A database that outlives the apps started on it (to test restarts).
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
            Backend::Postgres => Some(bazaar_store::testing::postgres_template("catalog_api")?),
        };
        Some(TestDb {
            dir: tempfile::tempdir().unwrap(),
            url,
        })
    }
}

/// A running catalog and a client for it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// Signs tokens the catalog accepts (its verifier trusts this key only).
    pub key: SigningKey,
    pub db: Arc<TestDb>,
}

impl TestApp {
    /// A catalog on a fresh database; `None` for PostgreSQL when no server is configured.
    pub async fn spawn(backend: Backend, seed_demo: bool) -> Option<TestApp> {
        let db = Arc::new(TestDb::new(backend)?);
        Some(TestApp::start(db, SigningKey::generate().unwrap(), seed_demo).await)
    }

    /// Another catalog on `db` (a restart, or a second replica).
    pub async fn start(db: Arc<TestDb>, key: SigningKey, seed_demo: bool) -> TestApp {
        let verifier = Arc::new(Verifier::with_keys(JwkSet {
            keys: vec![key.public_jwk()],
        }));
        let app = build(Settings {
            addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: db.dir.path().to_path_buf(),
            database_url: db.url.clone(),
            seed_demo,
            verifier,
            grpc_addr: "127.0.0.1:0".parse().unwrap(),
            resolver: bazaar_discovery::StaticResolver::new(Default::default()),
            bus: bazaar_messaging::BusConfig::default(),
        })
        .await
        .unwrap();
        let base = format!("http://{}", app.local_addr());
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        TestApp {
            base,
            client: reqwest::Client::new(),
            key,
            db,
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

    pub fn customer_token(&self) -> String {
        self.token(&["customer"])
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// `POST /api/v1/products` as an admin.
    pub async fn create(&self, body: &Value) -> Response {
        self.client
            .post(self.url("/api/v1/products"))
            .bearer_auth(self.admin_token())
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Creates a product and returns it; panics unless the answer is 201.
    pub async fn create_ok(&self, body: &Value) -> Value {
        let res = self.create(body).await;
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "{}",
            res.text().await.unwrap()
        );
        res.json().await.unwrap()
    }

    /// `PATCH /api/v1/products/{id}` as an admin.
    pub async fn patch(&self, id: &str, body: &Value) -> Response {
        self.client
            .patch(self.url(&format!("/api/v1/products/{id}")))
            .bearer_auth(self.admin_token())
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `GET path` expecting 200 and JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let res = self.get(path).await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{path}: {}",
            res.text().await.unwrap()
        );
        res.json().await.unwrap()
    }
}

/// A valid create body for `sku`.
pub fn product(sku: &str, name: &str, category: &str) -> Value {
    json!({
        "sku": sku,
        "name": name,
        "description": format!("A fine {name}."),
        "category": category,
        "price": {"amount_minor": 1299, "currency": "USD"},
    })
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
