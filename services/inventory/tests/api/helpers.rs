//! Starting inventory on a throw-away database and talking to it over HTTP and gRPC.

use std::{collections::HashMap, sync::Arc, time::Duration};

use bazaar_auth::{Claims, JwkSet, SigningKey, Verifier};
use bazaar_discovery::{Resolver, StaticResolver};
use bazaar_inventory::{build, Settings};
use bazaar_messaging::BusConfig;
use bazaar_proto::inventory::{
    inventory_client::InventoryClient, CommitRequest, Line, ReleaseRequest, ReservationStatus,
    ReserveRequest, ReserveResponse,
};
use bazaar_store::Db;
use reqwest::{header, Response, StatusCode};
use serde_json::{json, Value};
use sqlx::Row;
use tonic::transport::Channel;

/// Runs an async test body once on SQLite and once on PostgreSQL (skipped with a printed
/// reason when `BAZAAR_TEST_POSTGRES_URL` is unset).
macro_rules! both {
    ($name:ident, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: crate::helpers::TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_sqlite() {
                run(crate::helpers::TestApp::spawn(crate::helpers::Backend::Sqlite).await.unwrap()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
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

/// A database that outlives the apps started on it.
pub struct TestDb {
    pub dir: tempfile::TempDir,
    pub url: Option<String>,
}

impl TestDb {
    /// `None` for PostgreSQL when no server is configured.
    pub fn new(backend: Backend) -> Option<TestDb> {
        bazaar_runtime::telemetry::init_for_tests();
        let url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(bazaar_store::testing::postgres_template("inventory_api")?),
        };
        Some(TestDb {
            dir: tempfile::tempdir().unwrap(),
            url,
        })
    }
}

/// How to start an inventory.
#[derive(Default)]
pub struct Options {
    pub seed_demo: bool,
    /// `service -> host:port` of event producers (fake catalog / shipping).
    pub producers: HashMap<String, Vec<String>>,
}

/// A running inventory and clients for it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub grpc: InventoryClient<Channel>,
    /// Signs tokens inventory accepts (its verifier trusts this key only).
    pub key: SigningKey,
    /// A second handle on inventory's database, for checks the API does not offer.
    pub store: Db,
    /// Keeps the database (and its temporary directory) alive while the app runs.
    pub _db: Arc<TestDb>,
}

impl TestApp {
    /// An inventory on a fresh database; `None` for PostgreSQL when no server is configured.
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, Options::default()).await
    }

    pub async fn spawn_with(backend: Backend, options: Options) -> Option<TestApp> {
        let db = Arc::new(TestDb::new(backend)?);
        Some(TestApp::start(db, options).await)
    }

    pub async fn start(db: Arc<TestDb>, options: Options) -> TestApp {
        let key = SigningKey::generate().unwrap();
        let verifier = Arc::new(Verifier::with_keys(JwkSet {
            keys: vec![key.public_jwk()],
        }));
        let resolver: Arc<dyn Resolver> = StaticResolver::new(options.producers);
        let app = build(Settings {
            addr: "127.0.0.1:0".parse().unwrap(),
            grpc_addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: db.dir.path().to_path_buf(),
            database_url: db.url.clone(),
            seed_demo: options.seed_demo,
            verifier,
            resolver,
            bus: BusConfig {
                relay_poll: Duration::from_millis(50),
                feed_wait: Duration::from_secs(1),
                unreachable_backoff_max: Duration::from_millis(200),
                ..BusConfig::default()
            },
        })
        .await
        .unwrap();
        let base = format!("http://{}", app.local_addr());
        let grpc_addr = app.grpc_addr().unwrap();
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        let grpc = InventoryClient::connect(format!("http://{grpc_addr}"))
            .await
            .unwrap();
        let store = open_store(&db).await;
        TestApp {
            base,
            client: reqwest::Client::new(),
            grpc,
            key,
            store,
            _db: db,
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

    /// `GET /api/v1/inventory/{sku}` as an admin.
    pub async fn get_levels(&self, sku: &str) -> Response {
        self.client
            .get(self.url(&format!("/api/v1/inventory/{sku}")))
            .bearer_auth(self.admin_token())
            .send()
            .await
            .unwrap()
    }

    /// The levels of `sku` as `(on_hand, reserved, available)`; panics unless 200.
    pub async fn levels(&self, sku: &str) -> (i64, i64, i64) {
        let res = self.get_levels(sku).await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        (
            body["on_hand"].as_i64().unwrap(),
            body["reserved"].as_i64().unwrap(),
            body["available"].as_i64().unwrap(),
        )
    }

    /// `PUT /api/v1/inventory/{sku}` as an admin.
    pub async fn put(&self, sku: &str, body: &Value) -> Response {
        self.client
            .put(self.url(&format!("/api/v1/inventory/{sku}")))
            .bearer_auth(self.admin_token())
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Sets `on_hand` of `sku`; panics unless 200.
    pub async fn stock(&self, sku: &str, on_hand: i64) -> Value {
        let res = self.put(sku, &json!({ "on_hand": on_hand })).await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// `POST /api/v1/inventory/{sku}/restock` as an admin.
    pub async fn restock(&self, sku: &str, body: &Value) -> Response {
        self.client
            .post(self.url(&format!("/api/v1/inventory/{sku}/restock")))
            .bearer_auth(self.admin_token())
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `GET /admin/ledger/{sku}`; panics unless 200.
    pub async fn ledger(&self, sku: &str) -> Value {
        let res = self
            .client
            .get(self.url(&format!("/admin/ledger/{sku}")))
            .bearer_auth(self.admin_token())
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn reserve(&self, order_id: &str, lines: &[(&str, i64)]) -> ReserveResponse {
        self.try_reserve(order_id, lines).await.unwrap()
    }

    pub async fn try_reserve(
        &self,
        order_id: &str,
        lines: &[(&str, i64)],
    ) -> Result<ReserveResponse, tonic::Status> {
        self.grpc
            .clone()
            .reserve(ReserveRequest {
                order_id: order_id.to_owned(),
                lines: lines
                    .iter()
                    .map(|(sku, quantity)| Line {
                        sku: (*sku).to_owned(),
                        quantity: *quantity,
                    })
                    .collect(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn release(&self, order_id: &str, reason: &str) -> ReservationStatus {
        let res = self
            .grpc
            .clone()
            .release(ReleaseRequest {
                order_id: order_id.to_owned(),
                reason: reason.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        res.status()
    }

    pub async fn commit(&self, order_id: &str) -> ReservationStatus {
        let res = self
            .grpc
            .clone()
            .commit(CommitRequest {
                order_id: order_id.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        res.status()
    }

    /// The event types in the outbox, oldest first, with their subjects.
    pub async fn outbox(&self) -> Vec<(String, Option<String>, Value)> {
        outbox(&self.store).await
    }

    /// Checks the ledger invariant of `sku` against the database itself.
    pub async fn assert_consistent(&self, sku: &str) -> DbLevels {
        let levels = db_levels(&self.store, sku).await;
        assert!(
            levels.reserved >= 0 && levels.reserved <= levels.on_hand,
            "{sku}: {levels:?}"
        );
        assert_eq!(
            levels.on_hand, levels.on_hand_from_ledger,
            "{sku}: {levels:?}"
        );
        assert_eq!(
            levels.reserved, levels.reserved_from_ledger,
            "{sku}: {levels:?}"
        );
        levels
    }
}

/// Opens a second handle on the database `db` of an inventory.
pub async fn open_store(db: &TestDb) -> Db {
    let migrations = [
        bazaar_inventory::store::MIGRATIONS,
        bazaar_messaging::MIGRATIONS,
    ]
    .concat();
    Db::open_for_service("inventory", db.dir.path(), db.url.as_deref(), &migrations)
        .await
        .unwrap()
}

/// A SKU's row and ledger sums, straight from SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbLevels {
    pub on_hand: i64,
    pub reserved: i64,
    pub on_hand_from_ledger: i64,
    pub reserved_from_ledger: i64,
}

pub async fn db_levels(store: &Db, sku: &str) -> DbLevels {
    let mut tx = store.reader().begin().await.unwrap();
    let row = sqlx::query("SELECT on_hand, reserved FROM stock WHERE sku = $1")
        .bind(sku)
        .fetch_optional(&mut *tx)
        .await
        .unwrap();
    let (on_hand, reserved) = row
        .map(|r| (r.get::<i64, _>(0), r.get::<i64, _>(1)))
        .unwrap_or((0, 0));
    let sums = sqlx::query(
        "SELECT \
           CAST(COALESCE(SUM(CASE WHEN kind IN ('adjustment', 'commit') THEN quantity ELSE 0 END), 0) AS BIGINT), \
           CAST(COALESCE(SUM(CASE WHEN kind IN ('reserve', 'release', 'commit') THEN quantity ELSE 0 END), 0) AS BIGINT) \
         FROM movements WHERE sku = $1",
    )
    .bind(sku)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    DbLevels {
        on_hand,
        reserved,
        on_hand_from_ledger: sums.get(0),
        reserved_from_ledger: sums.get(1),
    }
}

/// `(type, subject, data)` of every event in `store`'s outbox, oldest first.
pub async fn outbox(store: &Db) -> Vec<(String, Option<String>, Value)> {
    sqlx::query("SELECT type, subject, envelope FROM msg_outbox ORDER BY created_us, id")
        .fetch_all(store.reader())
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let envelope: Value = serde_json::from_str(&r.get::<String, _>(2)).unwrap();
            (r.get(0), r.get(1), envelope["data"].clone())
        })
        .collect()
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

/// A fresh order id.
pub fn order() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Waits (up to 20 s) until `check` returns `Some`, polling.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
