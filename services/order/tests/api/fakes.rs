//! Small scriptable gRPC servers standing in for catalog, inventory and payment, with a
//! record of every call, and an event producer standing in for catalog, payment or shipping.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use bazaar_contracts::events::EventPayload;
use bazaar_discovery::Resolver;
use bazaar_messaging::{Bus, BusConfig};
use bazaar_proto::{
    catalog::{
        catalog_server::{Catalog, CatalogServer},
        GetProductsRequest, GetProductsResponse, Product,
    },
    grpc::GrpcListener,
    inventory::{
        inventory_server::{Inventory, InventoryServer},
        CommitRequest, CommitResponse, ReleaseRequest, ReleaseResponse, ReservationStatus,
        ReserveRequest, ReserveResponse,
    },
    payment::{
        payment_server::{Payment, PaymentServer},
        ChargeRequest, ChargeResponse, GetPaymentRequest, PaymentStatus, PaymentView,
        RefundRequest, RefundResponse,
    },
};
use bazaar_store::Db;
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};
use tonic::{Request, Response, Status};

/// Every call made to a fake, in order: `(order_id, what)`.
#[derive(Default)]
pub struct CallLog {
    calls: Mutex<Vec<(String, String)>>,
    in_flight: Mutex<HashMap<String, u32>>,
    /// Calls for an order that started while another call for it was running.
    pub overlaps: AtomicU32,
}

/// Decrements the in-flight count of an order when a call ends (or is dropped).
pub struct InFlight<'a> {
    log: &'a CallLog,
    order_id: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut m = self.log.in_flight.lock().unwrap();
        if let Some(n) = m.get_mut(&self.order_id) {
            *n = n.saturating_sub(1);
        }
    }
}

impl CallLog {
    fn start(&self, order_id: &str, what: impl Into<String>) -> InFlight<'_> {
        self.calls
            .lock()
            .unwrap()
            .push((order_id.to_owned(), what.into()));
        let mut m = self.in_flight.lock().unwrap();
        let n = m.entry(order_id.to_owned()).or_default();
        if *n > 0 {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        *n += 1;
        InFlight {
            log: self,
            order_id: order_id.to_owned(),
        }
    }

    /// The calls for `order_id`, in order.
    pub fn of(&self, order_id: &str) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(o, _)| o == order_id)
            .map(|(_, w)| w.clone())
            .collect()
    }

    /// How many calls for `order_id` start with `prefix`.
    pub fn count(&self, order_id: &str, prefix: &str) -> usize {
        self.of(order_id)
            .iter()
            .filter(|w| w.starts_with(prefix))
            .count()
    }
}

/// A gate calls can be made to wait at.
pub struct Gate(watch::Sender<bool>);

impl Default for Gate {
    fn default() -> Self {
        Gate(watch::channel(true).0)
    }
}

impl Gate {
    pub fn close(&self) {
        self.0.send_replace(false);
    }

    pub fn open(&self) {
        self.0.send_replace(true);
    }

    async fn pass(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }
}

// ---- catalog ---------------------------------------------------------------------------

#[derive(Default)]
pub struct FakeCatalog {
    pub products: Mutex<HashMap<String, Product>>,
    pub calls: AtomicU32,
    pub gate: Gate,
}

impl FakeCatalog {
    pub fn add(&self, id: &str, sku: &str, name: &str, price_minor: i64) {
        self.products.lock().unwrap().insert(
            id.to_owned(),
            Product {
                id: id.to_owned(),
                sku: sku.to_owned(),
                name: name.to_owned(),
                price_minor,
                currency: "USD".to_owned(),
            },
        );
    }
}

#[tonic::async_trait]
impl Catalog for FakeCatalog {
    async fn get_products(
        &self,
        request: Request<GetProductsRequest>,
    ) -> Result<Response<GetProductsResponse>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.gate.pass().await;
        let ids = request.into_inner().product_ids;
        let products = self.products.lock().unwrap();
        Ok(Response::new(GetProductsResponse {
            products: ids
                .iter()
                .filter_map(|i| products.get(i).cloned())
                .collect(),
        }))
    }
}

// ---- inventory -------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Held {
    Reserved(Vec<(String, i64)>),
    Released,
}

#[derive(Default)]
pub struct FakeInventory {
    /// Available units per SKU; SKUs not listed have plenty.
    pub stock: Mutex<HashMap<String, i64>>,
    held: Mutex<HashMap<String, Held>>,
    /// Answer `Reserve` with UNAVAILABLE.
    pub fail_reserve: AtomicBool,
    /// `Reserve` waits here.
    pub reserve_gate: Gate,
    pub log: CallLog,
}

impl FakeInventory {
    pub fn set_stock(&self, sku: &str, units: i64) {
        self.stock.lock().unwrap().insert(sku.to_owned(), units);
    }

    /// Whether the order holds stock now.
    pub fn holds(&self, order_id: &str) -> bool {
        matches!(
            self.held.lock().unwrap().get(order_id),
            Some(Held::Reserved(_))
        )
    }
}

#[tonic::async_trait]
impl Inventory for FakeInventory {
    async fn reserve(
        &self,
        request: Request<ReserveRequest>,
    ) -> Result<Response<ReserveResponse>, Status> {
        let req = request.into_inner();
        let _f = self.log.start(&req.order_id, "reserve");
        // Long enough for a second worker to try the same saga, if it could.
        tokio::time::sleep(Duration::from_millis(30)).await;
        self.reserve_gate.pass().await;
        if self.fail_reserve.load(Ordering::SeqCst) {
            return Err(Status::unavailable("inventory database is down"));
        }
        let mut held = self.held.lock().unwrap();
        let reply = |status: ReservationStatus, short: Vec<String>| {
            Ok(Response::new(ReserveResponse {
                status: status as i32,
                short_skus: short,
            }))
        };
        match held.get(&req.order_id) {
            Some(Held::Released) => return reply(ReservationStatus::Released, vec![]),
            Some(Held::Reserved(_)) => return reply(ReservationStatus::Reserved, vec![]),
            None => {}
        }
        let mut stock = self.stock.lock().unwrap();
        let short: Vec<String> = req
            .lines
            .iter()
            .filter(|l| stock.get(&l.sku).is_some_and(|n| *n < l.quantity))
            .map(|l| l.sku.clone())
            .collect();
        if !short.is_empty() {
            return reply(ReservationStatus::OutOfStock, short);
        }
        for l in &req.lines {
            if let Some(n) = stock.get_mut(&l.sku) {
                *n -= l.quantity;
            }
        }
        held.insert(
            req.order_id.clone(),
            Held::Reserved(
                req.lines
                    .iter()
                    .map(|l| (l.sku.clone(), l.quantity))
                    .collect(),
            ),
        );
        reply(ReservationStatus::Reserved, vec![])
    }

    async fn release(
        &self,
        request: Request<ReleaseRequest>,
    ) -> Result<Response<ReleaseResponse>, Status> {
        let req = request.into_inner();
        let _f = self
            .log
            .start(&req.order_id, format!("release:{}", req.reason));
        let mut held = self.held.lock().unwrap();
        if let Some(Held::Reserved(lines)) = held.get(&req.order_id) {
            let mut stock = self.stock.lock().unwrap();
            for (sku, q) in lines {
                if let Some(n) = stock.get_mut(sku) {
                    *n += q;
                }
            }
        }
        held.insert(req.order_id, Held::Released);
        Ok(Response::new(ReleaseResponse {
            status: ReservationStatus::Released as i32,
        }))
    }

    async fn commit(
        &self,
        _request: Request<CommitRequest>,
    ) -> Result<Response<CommitResponse>, Status> {
        Err(Status::unimplemented("the order service never commits"))
    }
}

// ---- payment ---------------------------------------------------------------------------

#[derive(Default)]
pub struct FakePayment {
    state: Mutex<HashMap<String, PaymentStatus>>,
    /// Orders whose first charge was lost (`tok_lost`).
    lost_once: Mutex<Vec<String>>,
    /// The provider is down: `Charge` answers UNAVAILABLE (the breaker is open).
    pub psp_down: AtomicBool,
    pub log: CallLog,
}

impl FakePayment {
    pub fn status(&self, order_id: &str) -> PaymentStatus {
        self.state
            .lock()
            .unwrap()
            .get(order_id)
            .copied()
            .unwrap_or(PaymentStatus::None)
    }
}

/// Longer than any test's step timeout: the caller's deadline passes first.
const TOO_LATE: Duration = Duration::from_secs(20);

#[tonic::async_trait]
impl Payment for FakePayment {
    async fn charge(
        &self,
        request: Request<ChargeRequest>,
    ) -> Result<Response<ChargeResponse>, Status> {
        let req = request.into_inner();
        let _f = self.log.start(&req.order_id, "charge");
        let reply = |status: PaymentStatus| {
            Ok(Response::new(ChargeResponse {
                status: status as i32,
                decline_reason: if status == PaymentStatus::Declined {
                    "card_declined".into()
                } else {
                    String::new()
                },
            }))
        };
        let known = self.status(&req.order_id);
        if known != PaymentStatus::None {
            return reply(known);
        }
        if self.psp_down.load(Ordering::SeqCst) {
            return Err(Status::unavailable(
                "the payment provider is unavailable (breaker open)",
            ));
        }
        let outcome = match req.card_token.as_str() {
            "tok_declined" => PaymentStatus::Declined,
            "tok_timeout" => {
                // The provider captures, but answers after the caller gave up.
                self.state
                    .lock()
                    .unwrap()
                    .insert(req.order_id.clone(), PaymentStatus::Captured);
                tokio::time::sleep(TOO_LATE).await;
                PaymentStatus::Captured
            }
            "tok_lost" => {
                let first = {
                    let mut lost = self.lost_once.lock().unwrap();
                    if lost.contains(&req.order_id) {
                        false
                    } else {
                        lost.push(req.order_id.clone());
                        true
                    }
                };
                if first {
                    // The request never reached the provider, and nobody answers in time.
                    tokio::time::sleep(TOO_LATE).await;
                }
                PaymentStatus::Captured
            }
            _ => PaymentStatus::Captured,
        };
        self.state
            .lock()
            .unwrap()
            .insert(req.order_id.clone(), outcome);
        reply(outcome)
    }

    async fn refund(
        &self,
        request: Request<RefundRequest>,
    ) -> Result<Response<RefundResponse>, Status> {
        let req = request.into_inner();
        let _f = self
            .log
            .start(&req.order_id, format!("refund:{}", req.reason));
        let mut state = self.state.lock().unwrap();
        let status = match state.get(&req.order_id).copied() {
            Some(PaymentStatus::Captured) | Some(PaymentStatus::Refunded) => {
                state.insert(req.order_id.clone(), PaymentStatus::Refunded);
                PaymentStatus::Refunded
            }
            Some(other) => other,
            None => PaymentStatus::None,
        };
        Ok(Response::new(RefundResponse {
            status: status as i32,
            refunded_minor: 0,
        }))
    }

    async fn get_payment(
        &self,
        request: Request<GetPaymentRequest>,
    ) -> Result<Response<PaymentView>, Status> {
        let req = request.into_inner();
        let _f = self.log.start(&req.order_id, "get_payment");
        Ok(Response::new(PaymentView {
            order_id: req.order_id.clone(),
            status: self.status(&req.order_id) as i32,
            captured_minor: 0,
            refunded_minor: 0,
            attempts: 0,
        }))
    }
}

/// The three fakes behind one gRPC port.
pub struct Fakes {
    pub catalog: Arc<FakeCatalog>,
    pub inventory: Arc<FakeInventory>,
    pub payment: Arc<FakePayment>,
    pub addr: SocketAddr,
    _stop: DropGuard,
}

impl Fakes {
    pub async fn start() -> Fakes {
        let catalog = Arc::new(FakeCatalog::default());
        let inventory = Arc::new(FakeInventory::default());
        let payment = Arc::new(FakePayment::default());
        let listener = GrpcListener::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr();
        let routes = tonic::service::Routes::new(CatalogServer::from_arc(catalog.clone()))
            .add_service(InventoryServer::from_arc(inventory.clone()))
            .add_service(PaymentServer::from_arc(payment.clone()));
        let stop = CancellationToken::new();
        tokio::spawn(listener.serve("fakes", routes, stop.clone()));
        Fakes {
            catalog,
            inventory,
            payment,
            addr,
            _stop: stop.drop_guard(),
        }
    }
}

/// Another service's event feed (catalog, payment or shipping), backed by its own database.
pub struct FakeProducer {
    db: Db,
    bus: Bus,
    pub addr: SocketAddr,
    _stop: DropGuard,
}

impl FakeProducer {
    pub async fn start(service: &'static str, dir: &Path, resolver: Arc<dyn Resolver>) -> Self {
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let routes = bus.routes();
        let serve_stop = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, routes)
                .with_graceful_shutdown(async move { serve_stop.cancelled().await })
                .await
        });
        FakeProducer {
            db,
            bus,
            addr,
            _stop: stop.drop_guard(),
        }
    }

    /// Publishes `event` as this producer would (outbox, then relay).
    pub async fn publish<E: EventPayload>(&self, event: &E) {
        let mut tx = self.db.begin().await.unwrap();
        bazaar_messaging::publish(&mut tx, event).await.unwrap();
        tx.commit().await.unwrap();
        self.bus.notify();
    }
}
