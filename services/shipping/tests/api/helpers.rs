//! A shipping instance on a throw-away database, a fake order service, and ways to look.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bazaar_auth::{Claims, JwkSet, SigningKey, Verifier};
use bazaar_contracts::events::{AddressV1, EventPayload, MoneyV1, OrderConfirmedV1, OrderLineV1};
use bazaar_discovery::{Instance, ResolveFuture, Resolver};
use bazaar_messaging::{Bus, BusConfig};
use bazaar_proto::{
    grpc::GrpcListener,
    order::{
        order_server::{Order, OrderServer},
        ClaimRequest, ClaimResponse,
    },
};
use bazaar_runtime::{time::now_micros, App, Health, ServiceStack};
use bazaar_shipping::{build, Settings};
use bazaar_store::Db;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

/// Runs an async test body once on SQLite and once on PostgreSQL (skipped with a printed
/// reason when `BAZAAR_TEST_POSTGRES_URL` is unset), given a [`World`] made by `World::new`
/// or the named constructor.
macro_rules! both {
    ($name:ident, |$world:ident| $body:block) => {
        both!($name, new, |$world| $body);
    };
    ($name:ident, $ctor:ident, |$world:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($world: crate::helpers::World) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                run(crate::helpers::World::$ctor(crate::helpers::Backend::Sqlite).await.unwrap()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                if let Some(world) = crate::helpers::World::$ctor(crate::helpers::Backend::Postgres).await {
                    run(world).await;
                }
            }
        }
    };
}
pub(crate) use both;

/// Which database shipping runs on.
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
    pub fn set(&self, service: &str, http_addr: SocketAddr, grpc_addr: Option<SocketAddr>) {
        let mut i = Instance::new(service, format!("{service}-1"), http_addr.to_string());
        i.grpc_addr = grpc_addr.map(|a| a.to_string());
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

/// What the fake order service answers to one claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Grant,
    /// Refused; the order is in this status.
    Refuse(&'static str),
    /// A gRPC error.
    Fail(tonic::Code),
}

/// One `ClaimForShipment` the fake order service received.
#[derive(Debug, Clone)]
pub struct Call {
    pub order_id: String,
    pub shipment_id: String,
    /// When it arrived (µs).
    pub at_us: i64,
}

/// The fake order service's script and log.
#[derive(Debug, Default)]
pub struct Script {
    /// Answers for one order, used in turn; then `Grant`.
    queued: HashMap<String, VecDeque<Answer>>,
    calls: Vec<Call>,
}

#[derive(Clone, Default)]
pub struct FakeOrderGrpc {
    script: Arc<Mutex<Script>>,
}

#[tonic::async_trait]
impl Order for FakeOrderGrpc {
    async fn claim_for_shipment(
        &self,
        request: tonic::Request<ClaimRequest>,
    ) -> Result<tonic::Response<ClaimResponse>, tonic::Status> {
        let req = request.into_inner();
        let answer = {
            let mut s = self.script.lock().unwrap();
            s.calls.push(Call {
                order_id: req.order_id.clone(),
                shipment_id: req.shipment_id.clone(),
                at_us: now_micros(),
            });
            let queued = s
                .queued
                .get_mut(&req.order_id)
                .and_then(VecDeque::pop_front);
            queued.unwrap_or(Answer::Grant)
        };
        match answer {
            Answer::Grant => Ok(tonic::Response::new(ClaimResponse {
                claimed: true,
                order_status: "confirmed".into(),
            })),
            Answer::Refuse(status) => Ok(tonic::Response::new(ClaimResponse {
                claimed: false,
                order_status: status.into(),
            })),
            Answer::Fail(code) => Err(tonic::Status::new(code, "scripted failure")),
        }
    }
}

/// The order service as shipping sees it: a producer of `order.*` events (a real messaging
/// bus with its own outbox, serving its feed over HTTP) and a gRPC `Order` server that can
/// be stopped and started again on the same address.
pub struct FakeOrder {
    pub db: Db,
    pub bus: Bus,
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    grpc: FakeOrderGrpc,
    grpc_stop: Mutex<Option<CancellationToken>>,
    _stop: tokio_util::sync::DropGuard,
}

impl FakeOrder {
    async fn start(dir: &std::path::Path, resolver: Arc<TestResolver>) -> FakeOrder {
        let db = Db::open_for_service("order", dir, None, bazaar_messaging::MIGRATIONS)
            .await
            .unwrap();
        let stop = CancellationToken::new();
        let bus = Bus::start(
            "order",
            db.clone(),
            resolver,
            BusConfig::default(),
            stop.clone(),
        )
        .await
        .unwrap();
        let app = App::bind(
            "127.0.0.1:0".parse().unwrap(),
            ServiceStack::new("order", Health::new()).wrap(bus.routes()),
        )
        .await
        .unwrap();
        let http_addr = app.local_addr();
        let app_stop = stop.clone();
        tokio::spawn(app.run_until_stopped(async move { app_stop.cancelled().await }));
        // A free port for gRPC, not served until `start_grpc`.
        let grpc_addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        FakeOrder {
            db,
            bus,
            http_addr,
            grpc_addr,
            grpc: FakeOrderGrpc::default(),
            grpc_stop: Mutex::new(None),
            _stop: stop.drop_guard(),
        }
    }

    /// Serves the gRPC `Order` service on [`FakeOrder::grpc_addr`].
    pub async fn start_grpc(&self) {
        let listener = GrpcListener::bind(self.grpc_addr).await.unwrap();
        let stop = CancellationToken::new();
        let routes = tonic::service::Routes::new(OrderServer::new(self.grpc.clone()));
        tokio::spawn(listener.serve("order", routes, stop.clone()));
        *self.grpc_stop.lock().unwrap() = Some(stop);
    }

    /// Queues answers for the claims of `order_id`.
    pub fn answer(&self, order_id: &str, answers: &[Answer]) {
        self.grpc
            .script
            .lock()
            .unwrap()
            .queued
            .entry(order_id.to_owned())
            .or_default()
            .extend(answers.iter().copied());
    }

    /// The claims received so far for `order_id`.
    pub fn calls(&self, order_id: &str) -> Vec<Call> {
        self.grpc
            .script
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.order_id == order_id)
            .cloned()
            .collect()
    }

    /// Publishes `event` from the order service's outbox; returns its event id.
    pub async fn publish<E: EventPayload>(&self, event: &E) -> String {
        let mut tx = self.db.begin().await.unwrap();
        let id = bazaar_messaging::publish(&mut tx, event).await.unwrap();
        tx.commit().await.unwrap();
        self.bus.notify();
        id
    }
}

/// A confirmed order of a new user, shipped to `postal_code`.
pub fn confirmed(postal_code: &str) -> OrderConfirmedV1 {
    OrderConfirmedV1 {
        order_id: uuid::Uuid::now_v7().to_string(),
        user_id: uuid::Uuid::now_v7().to_string(),
        items: vec![OrderLineV1 {
            product_id: uuid::Uuid::now_v7().to_string(),
            sku: "BK-0001".into(),
            name: "A book".into(),
            unit_price: MoneyV1 {
                amount_minor: 1299,
                currency: "USD".into(),
            },
            quantity: 2,
        }],
        total: MoneyV1 {
            amount_minor: 2598,
            currency: "USD".into(),
        },
        shipping_address: AddressV1 {
            name: "Ada Lovelace".into(),
            line1: "1 Analytical Way".into(),
            line2: None,
            city: "London".into(),
            postal_code: postal_code.into(),
            country: "GB".into(),
        },
    }
}

/// Everything one test needs: a database for shipping, a fake order service, a resolver
/// that finds it, and the running shipping instances.
pub struct World {
    pub dir: tempfile::TempDir,
    pub url: Option<String>,
    pub resolver: Arc<TestResolver>,
    pub order: FakeOrder,
    pub key: SigningKey,
    pub client: reqwest::Client,
}

/// A running shipping instance.
pub struct Shipping {
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Shipping {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the instance and waits until it has (its worker and bus included).
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(done) = self.done.take() {
            done.await.unwrap().unwrap();
        }
    }
}

impl World {
    /// `None` for PostgreSQL when no server is configured. The order gRPC server is up.
    pub async fn new(backend: Backend) -> Option<World> {
        let world = Self::without_grpc(backend).await?;
        world.order.start_grpc().await;
        Some(world)
    }

    /// Like [`World::new`], but order's gRPC port refuses connections until
    /// `world.order.start_grpc()`.
    pub async fn without_grpc(backend: Backend) -> Option<World> {
        bazaar_runtime::telemetry::init_for_tests();
        let url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(bazaar_store::testing::postgres_template("shipping_api")?),
        };
        let dir = tempfile::tempdir().unwrap();
        let resolver = Arc::new(TestResolver::default());
        let order = FakeOrder::start(dir.path(), resolver.clone()).await;
        resolver.set("order", order.http_addr, Some(order.grpc_addr));
        Some(World {
            dir,
            url,
            resolver,
            order,
            key: SigningKey::generate().unwrap(),
            client: reqwest::Client::new(),
        })
    }

    /// Starts a shipping instance on the world's database.
    pub async fn shipping(&self, handling_time: Duration, instance_id: &str) -> Shipping {
        let verifier = Arc::new(Verifier::with_keys(JwkSet {
            keys: vec![self.key.public_jwk()],
        }));
        let app = build(Settings {
            addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: self.dir.path().to_path_buf(),
            database_url: self.url.clone(),
            verifier,
            resolver: self.resolver.clone(),
            bus: BusConfig {
                feed_wait: Duration::from_secs(1),
                ..BusConfig::default()
            },
            handling_time,
            instance_id: instance_id.to_owned(),
        })
        .await
        .unwrap();
        let base = format!("http://{}", app.local_addr());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        Shipping {
            base,
            stop: Some(tx),
            done: Some(done),
        }
    }

    /// The shipping database, opened beside the running instances.
    pub async fn db(&self) -> Db {
        let migrations = [
            bazaar_shipping::store::MIGRATIONS,
            bazaar_messaging::MIGRATIONS,
        ]
        .concat();
        Db::open_for_service(
            "shipping",
            self.dir.path(),
            self.url.as_deref(),
            &migrations,
        )
        .await
        .unwrap()
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

    /// `GET path` on `shipping` as an admin.
    pub async fn admin_get(&self, shipping: &Shipping, path: &str) -> reqwest::Response {
        self.client
            .get(shipping.url(path))
            .bearer_auth(self.admin_token())
            .send()
            .await
            .unwrap()
    }

    /// The shipment of `order_id` as the admin API shows it, if there is one.
    pub async fn shipment(&self, shipping: &Shipping, order_id: &str) -> Option<Value> {
        let res = self
            .admin_get(
                shipping,
                &format!("/api/v1/admin/shipments?order_id={order_id}"),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let page: Value = res.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 1, "{page}");
        items.first().cloned()
    }

    /// Waits until the shipment of `order_id` exists and is `status`; returns it.
    pub async fn shipment_in(&self, shipping: &Shipping, order_id: &str, status: &str) -> Value {
        eventually(
            &format!("shipment of {order_id} to be {status}"),
            || async {
                self.shipment(shipping, order_id)
                    .await
                    .filter(|s| s["status"] == status)
            },
        )
        .await
    }
}

/// The events in shipping's outbox about `order_id`, as `(type, data)`, oldest first.
pub async fn outbox(db: &Db, order_id: &str) -> Vec<(String, Value)> {
    let rows = sqlx::query(
        "SELECT type, envelope FROM msg_outbox WHERE subject = $1 ORDER BY created_us, id",
    )
    .bind(order_id.to_owned())
    .fetch_all(db.reader())
    .await
    .unwrap();
    rows.iter()
        .map(|r| {
            let env: Value = serde_json::from_str(&r.get::<String, _>(1)).unwrap();
            (r.get::<String, _>(0), env["data"].clone())
        })
        .collect()
}

/// How many events shipping's subscription has taken in (its inbox).
pub async fn inbox_count(db: &Db) -> i64 {
    sqlx::query("SELECT COUNT(*) FROM msg_inbox WHERE subscription = $1")
        .bind("shipping.order_confirmed")
        .fetch_one(db.reader())
        .await
        .unwrap()
        .get::<i64, _>(0)
}

/// Whether `t` is a tracking number of the documented shape.
pub fn is_tracking_number(t: &str) -> bool {
    t.len() == 14
        && t.starts_with("BZ")
        && t[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

/// Microseconds of an RFC 3339 time the service wrote.
pub fn micros(rfc3339: &Value) -> i64 {
    let t = time::OffsetDateTime::parse(
        rfc3339.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap()
}
