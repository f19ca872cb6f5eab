//! Producers and consumers as real HTTP services on throw-away databases.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc, Mutex, RwLock,
    },
    time::Duration,
};

use bazaar_auth::{Claims, JwkSet, SigningKey, Verifier};
use bazaar_contracts::events::EventPayload;
use bazaar_discovery::{Instance, ResolveFuture, Resolver, StaticResolver};
use bazaar_messaging::{
    publish, Bus, BusConfig, Envelope, Handler, HandlerError, RetryPolicy, Subscription, MIGRATIONS,
};
use bazaar_runtime::{App, Health, ServiceStack};
use bazaar_store::{Db, Migration, Tx};
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

/// The event most tests publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Item {
    pub n: i64,
}

impl EventPayload for Item {
    const TYPE: &'static str = "bazaar.testprod.item.v1";
    const SERVICE: &'static str = "testprod";
    fn subject(&self) -> String {
        format!("item-{}", self.n)
    }
}

/// An event the consumers do not subscribe to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Other {
    pub n: i64,
}

impl EventPayload for Other {
    const TYPE: &'static str = "bazaar.testprod.other.v1";
    const SERVICE: &'static str = "testprod";
    fn subject(&self) -> String {
        format!("other-{}", self.n)
    }
}

/// The consumer's own table: one row per applied effect (no key on the event, so an effect
/// applied twice shows as two rows).
pub static CONSUMER_MIGRATIONS: &[Migration] = &[Migration::new(
    1,
    "effects",
    "CREATE TABLE effects (seq TEXT PRIMARY KEY, event_id TEXT NOT NULL, n BIGINT NOT NULL)",
)];

/// A unique service name (so tests sharing a NATS server never share a stream).
pub fn unique(prefix: &str) -> &'static str {
    let id = uuid::Uuid::new_v4().simple().to_string();
    Box::leak(format!("{prefix}-{}", &id[..10]).into_boxed_str())
}

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where a test's databases live.
pub struct Dbs {
    dir: tempfile::TempDir,
    template: Option<String>,
}

impl Dbs {
    /// `None` for PostgreSQL without a configured server (the skip reason is printed).
    pub fn new(backend: Backend) -> Option<Dbs> {
        bazaar_runtime::telemetry::init_for_tests();
        let template = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(bazaar_store::testing::postgres_template("messaging")?),
        };
        Some(Dbs {
            dir: tempfile::tempdir().unwrap(),
            template,
        })
    }

    pub async fn open(&self, service: &str) -> Db {
        let migrations = [CONSUMER_MIGRATIONS, MIGRATIONS].concat();
        Db::open_for_service(
            service,
            self.dir.path(),
            self.template.as_deref(),
            &migrations,
        )
        .await
        .unwrap()
    }
}

/// The NATS server of `BAZAAR_TEST_NATS_URL`, or `None` with a printed reason.
pub fn nats_url() -> Option<String> {
    match std::env::var("BAZAAR_TEST_NATS_URL") {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ => {
            eprintln!("skipping the NATS variant: BAZAAR_TEST_NATS_URL is not set");
            None
        }
    }
}

/// Small, fast timings for tests.
pub fn config(url: Option<String>) -> BusConfig {
    BusConfig {
        url,
        retry: RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(5),
            max: Duration::from_millis(20),
        },
        relay_poll: Duration::from_millis(50),
        feed_wait: Duration::from_secs(2),
        unreachable_backoff_max: Duration::from_millis(200),
        ack_wait: Duration::from_secs(5),
        ..BusConfig::default()
    }
}

/// A resolver whose answers a test can change (a producer restarting on a new port).
#[derive(Default)]
pub struct SwitchResolver(RwLock<HashMap<String, Vec<Instance>>>);

impl SwitchResolver {
    pub fn set(&self, service: &str, addr: &str) {
        self.0.write().unwrap().insert(
            service.to_owned(),
            vec![Instance::new(service, "test", addr)],
        );
    }
}

impl Resolver for SwitchResolver {
    fn resolve<'a>(&'a self, service: &'a str) -> ResolveFuture<'a> {
        let found = self
            .0
            .read()
            .unwrap()
            .get(service)
            .cloned()
            .unwrap_or_default();
        Box::pin(async move { Arc::from(found) })
    }
}

/// A resolver that knows `service` at `addr`.
pub fn static_resolver(service: &str, addr: &str) -> Arc<dyn Resolver> {
    StaticResolver::new(HashMap::from([(service.to_owned(), vec![addr.to_owned()])]))
}

/// A resolver that knows nobody (a producer that consumes nothing).
pub fn no_resolver() -> Arc<dyn Resolver> {
    StaticResolver::new(HashMap::new())
}

/// Signs tokens every node accepts.
pub fn signing_key() -> Arc<SigningKey> {
    Arc::new(SigningKey::generate().unwrap())
}

/// A service with a bus, served over HTTP on a free port.
pub struct Node {
    pub service: &'static str,
    pub db: Db,
    pub bus: Bus,
    pub base: String,
    pub addr: String,
    pub stop: CancellationToken,
    pub key: Arc<SigningKey>,
    pub client: reqwest::Client,
}

impl Node {
    pub async fn start(
        service: &'static str,
        db: Db,
        resolver: Arc<dyn Resolver>,
        config: BusConfig,
        key: Arc<SigningKey>,
    ) -> Node {
        let stop = CancellationToken::new();
        let bus = Bus::start(service, db.clone(), resolver, config, stop.clone())
            .await
            .unwrap();
        let verifier = Arc::new(Verifier::with_keys(JwkSet {
            keys: vec![key.public_jwk()],
        }));
        let router = ServiceStack::new(service, Health::new())
            .with_verifier(verifier)
            .wrap(bus.routes());
        let app = App::bind("127.0.0.1:0".parse().unwrap(), router)
            .await
            .unwrap();
        let addr = app.local_addr().to_string();
        let s = stop.clone();
        tokio::spawn(app.run_until_stopped(async move { s.cancelled().await }));
        Node {
            service,
            db,
            bus,
            base: format!("http://{addr}"),
            addr,
            stop,
            key,
            client: reqwest::Client::new(),
        }
    }

    /// Stops the node's HTTP server and bus tasks and waits for the tasks.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.bus.stopped().await;
    }

    /// Publishes each of `events` in its own transaction, then wakes the relay.
    pub async fn publish_items(&self, ns: impl IntoIterator<Item = i64>) -> Vec<String> {
        let mut ids = Vec::new();
        for n in ns {
            let mut tx = self.db.begin().await.unwrap();
            ids.push(publish(&mut tx, &Item { n }).await.unwrap());
            tx.commit().await.unwrap();
            self.bus.notify();
        }
        ids
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

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn post(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.client.post(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn get_json(&self, path: &str, token: Option<&str>) -> Value {
        let res = self.get(path, token).await;
        let status = res.status();
        let body = res.text().await.unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    pub async fn dead_letters(&self) -> Vec<Value> {
        let v = self
            .get_json("/admin/dead-letters?limit=100", Some(&self.admin_token()))
            .await;
        v["items"].as_array().unwrap().clone()
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query(sql)
            .fetch_one(self.db.reader())
            .await
            .unwrap()
            .get::<i64, _>(0)
    }

    /// How many effects the consumer applied for event `n`.
    pub async fn effects_of(&self, n: i64) -> i64 {
        sqlx::query("SELECT COUNT(*) FROM effects WHERE n = $1")
            .bind(n)
            .fetch_one(self.db.reader())
            .await
            .unwrap()
            .get::<i64, _>(0)
    }

    /// Waits until `n` events are recorded in the inbox (the handler runs before the commit,
    /// so what it saw can be ahead of what is committed).
    pub async fn wait_inbox(&self, n: i64) {
        eventually(
            &format!("{n} events are committed in the inbox"),
            || async { self.scalar("SELECT COUNT(*) FROM msg_inbox").await == n },
        )
        .await;
    }

    pub async fn cursor(&self, subscription: &str) -> i64 {
        sqlx::query("SELECT pos FROM msg_cursors WHERE subscription = $1")
            .bind(subscription)
            .fetch_optional(self.db.reader())
            .await
            .unwrap()
            .map_or(0, |r| r.get::<i64, _>(0))
    }
}

/// The subscription most tests use.
pub fn items_of(producer: &'static str) -> Subscription {
    Subscription {
        name: "testcons.items",
        producer,
        types: &[Item::TYPE],
    }
}

/// A handler that records effects and fails on demand.
#[derive(Default)]
pub struct Recorder {
    /// Every call, successful or not, by `n`.
    pub calls: Mutex<HashMap<i64, u32>>,
    /// `n` of the events applied, in the order they were applied.
    pub applied: Mutex<Vec<i64>>,
    /// Fail this many calls (any event) before succeeding.
    pub fail_next: AtomicU32,
    /// These events fail (retryably) until `fixed` is set.
    pub poison: Mutex<HashSet<i64>>,
    pub fixed: AtomicBool,
    /// These events fail permanently.
    pub permanent: Mutex<HashSet<i64>>,
    /// Trace ids the handler ran under.
    pub trace_ids: Mutex<Vec<String>>,
    /// Every call waits for a read lock on this after writing its effect (a test holds the
    /// write lock to keep a handler in the middle of its transaction).
    pub gate: tokio::sync::RwLock<()>,
}

impl Recorder {
    pub fn calls_of(&self, n: i64) -> u32 {
        self.calls.lock().unwrap().get(&n).copied().unwrap_or(0)
    }

    pub fn total_calls(&self) -> u32 {
        self.calls.lock().unwrap().values().sum()
    }

    pub fn applied(&self) -> Vec<i64> {
        self.applied.lock().unwrap().clone()
    }

    async fn apply(&self, tx: &mut Tx, event: &Envelope) -> Result<(), HandlerError> {
        let item: Item = event.data()?;
        *self.calls.lock().unwrap().entry(item.n).or_default() += 1;
        if let Some(ctx) = bazaar_runtime::context::current() {
            self.trace_ids.lock().unwrap().push(ctx.trace_id);
        }
        // The effect is written before any failure: a failure must roll it back.
        sqlx::query("INSERT INTO effects (seq, event_id, n) VALUES ($1, $2, $3)")
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(&event.id)
            .bind(item.n)
            .execute(&mut **tx)
            .await?;
        drop(self.gate.read().await);
        if self.permanent.lock().unwrap().contains(&item.n) {
            return Err(HandlerError::permanent(format!(
                "event {} is refused",
                item.n
            )));
        }
        if self.poison.lock().unwrap().contains(&item.n) && !self.fixed.load(Ordering::SeqCst) {
            return Err(HandlerError::retry(format!("poison event {}", item.n)));
        }
        if self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(HandlerError::retry("transient failure"));
        }
        self.applied.lock().unwrap().push(item.n);
        Ok(())
    }
}

impl Handler for Recorder {
    fn handle<'a>(
        &'a self,
        tx: &'a mut Tx,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(self.apply(tx, event))
    }
}

/// Waits (up to a minute) until `cond` holds; panics with `what` otherwise.
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if cond().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A producer node and a consumer node subscribed to its items with a [`Recorder`].
pub struct Pair {
    /// Keeps the databases' directory alive as long as the pair.
    #[allow(dead_code)]
    pub dbs: Dbs,
    pub producer: Node,
    pub consumer: Node,
    pub recorder: Arc<Recorder>,
}

impl Pair {
    /// `None` for PostgreSQL without a server.
    pub async fn start(backend: Backend, config: BusConfig, recorder: Recorder) -> Option<Pair> {
        let dbs = Dbs::new(backend)?;
        let key = signing_key();
        let prod_name = unique("testprod");
        let cons_name = unique("testcons");
        let producer = Node::start(
            prod_name,
            dbs.open(prod_name).await,
            no_resolver(),
            config.clone(),
            key.clone(),
        )
        .await;
        let consumer = Node::start(
            cons_name,
            dbs.open(cons_name).await,
            static_resolver(prod_name, &producer.addr),
            config,
            key,
        )
        .await;
        let recorder = Arc::new(recorder);
        consumer
            .bus
            .subscribe(items_of(prod_name), recorder.clone());
        Some(Pair {
            dbs,
            producer,
            consumer,
            recorder,
        })
    }
}
