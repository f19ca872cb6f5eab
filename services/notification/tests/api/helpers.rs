//! A notification instance on a throw-away database, fake producers, and ways to look.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bazaar_auth::{Claims, JwkSet, SigningKey, Verifier};
use bazaar_contracts::events::EventPayload;
use bazaar_discovery::{Instance, ResolveFuture, Resolver};
use bazaar_messaging::{Bus, BusConfig};
use bazaar_notification::{build, Settings};
use bazaar_runtime::{App, Health, ServiceStack};
use bazaar_store::Db;
use reqwest::{header, Response, StatusCode};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Runs an async test body once on SQLite and once on PostgreSQL (skipped with a printed
/// reason when `BAZAAR_TEST_POSTGRES_URL` is unset).
macro_rules! both {
    ($name:ident, |$world:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($world: crate::helpers::World) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                run(crate::helpers::World::new(crate::helpers::Backend::Sqlite).await.unwrap()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                if let Some(world) = crate::helpers::World::new(crate::helpers::Backend::Postgres).await {
                    run(world).await;
                }
            }
        }
    };
}
pub(crate) use both;

/// Which database notification runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How long `eventually` waits for a condition: generous, the machine may be busy.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `check` until it returns `Some`, or panics after [`PATIENCE`] naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
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

/// A resolver whose answers the test sets.
#[derive(Default)]
pub struct TestResolver {
    map: Mutex<HashMap<String, Vec<Instance>>>,
}

impl TestResolver {
    pub fn set(&self, service: &str, http_addr: SocketAddr) {
        let i = Instance::new(service, format!("{service}-1"), http_addr.to_string());
        self.map.lock().unwrap().insert(service.to_owned(), vec![i]);
    }
}

impl Resolver for TestResolver {
    fn resolve<'a>(&'a self, service: &'a str) -> ResolveFuture<'a> {
        let found = self
            .map
            .lock()
            .unwrap()
            .get(service)
            .cloned()
            .unwrap_or_default();
        Box::pin(async move { Arc::from(found) })
    }
}

/// A producing service as consumers see it: a real messaging bus with its own outbox,
/// serving its feed over HTTP.
pub struct Producer {
    pub db: Db,
    pub bus: Bus,
    pub http_addr: SocketAddr,
    _stop: tokio_util::sync::DropGuard,
}

impl Producer {
    async fn start(
        service: &'static str,
        dir: &std::path::Path,
        resolver: Arc<TestResolver>,
    ) -> Producer {
        let db = Db::open_for_service(service, dir, None, bazaar_messaging::MIGRATIONS)
            .await
            .unwrap();
        let stop = CancellationToken::new();
        let bus = Bus::start(
            service,
            db.clone(),
            resolver,
            BusConfig::default(),
            stop.clone(),
        )
        .await
        .unwrap();
        let app = App::bind(
            "127.0.0.1:0".parse().unwrap(),
            ServiceStack::new(service, Health::new()).wrap(bus.routes()),
        )
        .await
        .unwrap();
        let http_addr = app.local_addr();
        let app_stop = stop.clone();
        tokio::spawn(app.run_until_stopped(async move { app_stop.cancelled().await }));
        Producer {
            db,
            bus,
            http_addr,
            _stop: stop.drop_guard(),
        }
    }

    /// Publishes `event` from this producer's outbox; returns its event id.
    pub async fn publish<E: EventPayload>(&self, event: &E) -> String {
        let mut tx = self.db.begin().await.unwrap();
        let id = bazaar_messaging::publish(&mut tx, event).await.unwrap();
        tx.commit().await.unwrap();
        self.bus.notify();
        id
    }
}

/// Everything one test needs.
pub struct World {
    pub dir: tempfile::TempDir,
    pub url: Option<String>,
    pub resolver: Arc<TestResolver>,
    pub identity: Producer,
    pub order: Producer,
    pub key: SigningKey,
    pub client: reqwest::Client,
    pub app: Notification,
}

/// A running notification instance.
pub struct Notification {
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Notification {
    /// Stops the instance and waits until it has.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(done) = self.done.take() {
            done.await.unwrap().unwrap();
        }
    }
}

impl World {
    /// A world with notification running; `None` for PostgreSQL when no server is configured.
    pub async fn new(backend: Backend) -> Option<World> {
        bazaar_runtime::telemetry::init_for_tests();
        let url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(bazaar_store::testing::postgres_template(
                "notification_api",
            )?),
        };
        let dir = tempfile::tempdir().unwrap();
        let resolver = Arc::new(TestResolver::default());
        let identity = Producer::start("identity", dir.path(), resolver.clone()).await;
        let order = Producer::start("order", dir.path(), resolver.clone()).await;
        resolver.set("identity", identity.http_addr);
        resolver.set("order", order.http_addr);
        let key = SigningKey::generate().unwrap();
        let app = start(&dir, url.as_deref(), &key, resolver.clone()).await;
        Some(World {
            dir,
            url,
            resolver,
            identity,
            order,
            key,
            client: reqwest::Client::new(),
            app,
        })
    }

    /// Stops notification and starts it again on the same database.
    pub async fn restart(&mut self) {
        self.app.stop().await;
        self.app = start(
            &self.dir,
            self.url.as_deref(),
            &self.key,
            self.resolver.clone(),
        )
        .await;
    }

    /// The notification database, opened beside the running instance.
    pub async fn db(&self) -> Db {
        let migrations = [
            bazaar_notification::store::MIGRATIONS,
            bazaar_messaging::MIGRATIONS,
        ]
        .concat();
        Db::open_for_service(
            "notification",
            self.dir.path(),
            self.url.as_deref(),
            &migrations,
        )
        .await
        .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.app.base)
    }

    /// A customer token for `user_id`.
    pub fn token_for(&self, user_id: &str) -> String {
        let claims = Claims::new_access(user_id, vec!["customer".into()], bazaar_auth::unix_now());
        self.key.sign(&claims).unwrap()
    }

    /// `GET path` as `user_id`.
    pub async fn get_as(&self, user_id: &str, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(self.token_for(user_id))
            .send()
            .await
            .unwrap()
    }

    /// `GET path` as `user_id`, expecting 200 and JSON.
    pub async fn get_json_as(&self, user_id: &str, path: &str) -> Value {
        let res = self.get_as(user_id, path).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        res.json().await.unwrap()
    }

    /// `POST /api/v1/me/notifications/{id}/read` as `user_id`.
    pub async fn mark_read(&self, user_id: &str, id: &str) -> Response {
        self.client
            .post(self.url(&format!("/api/v1/me/notifications/{id}/read")))
            .bearer_auth(self.token_for(user_id))
            .send()
            .await
            .unwrap()
    }

    /// Waits until `user_id` has `n` notifications; returns the first page (limit 100).
    pub async fn wait_for(&self, user_id: &str, n: usize) -> Value {
        eventually(&format!("{n} notifications for {user_id}"), || async {
            let page = self
                .get_json_as(user_id, "/api/v1/me/notifications?limit=100")
                .await;
            let have = page["items"].as_array().unwrap().len();
            assert!(have <= n, "more than {n} notifications: {page}");
            (have == n).then_some(page)
        })
        .await
    }
}

async fn start(
    dir: &tempfile::TempDir,
    url: Option<&str>,
    key: &SigningKey,
    resolver: Arc<TestResolver>,
) -> Notification {
    let verifier = Arc::new(Verifier::with_keys(JwkSet {
        keys: vec![key.public_jwk()],
    }));
    let app = build(Settings {
        addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        database_url: url.map(str::to_owned),
        verifier,
        resolver,
        bus: BusConfig {
            feed_wait: Duration::from_secs(1),
            ..BusConfig::default()
        },
    })
    .await
    .unwrap();
    let base = format!("http://{}", app.local_addr());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    Notification {
        base,
        stop: Some(tx),
        done: Some(done),
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

/// A fresh user id.
pub fn user() -> String {
    uuid::Uuid::now_v7().to_string()
}
