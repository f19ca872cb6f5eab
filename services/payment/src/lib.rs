//! The payment service: one payment per order, charged through the external card processor
//! (PSP) so that no retry, timeout or crash can ever charge an order twice.
//!
//! - **gRPC** `bazaar.payment.v1.Payment` (`Charge`, `GetPayment`, `Refund`) for the order
//!   service. Every charge carries the idempotency key `order-<order_id>` to the processor;
//!   a payment whose outcome is unknown (the processor timed out) is looked up at the
//!   processor before anything is sent again (query before retry).
//! - **Resilience**: each processor call has a bounded timeout and goes through a circuit
//!   breaker; while it is open, `Charge` answers `UNAVAILABLE` at once without calling the
//!   processor, which lets the order saga fall back to `payment_pending`.
//! - **Events**: `payment.captured` / `declined` / `refunded` through the transactional
//!   outbox; `shipping.failed` is consumed and refunded by a background worker.
//! - **Admin REST**: `GET /admin/payments` (also `/api/v1/admin/payments`),
//!   `GET /admin/breakers`, the event feed and dead letters.
//!
//! ```no_run
//! # async fn run(
//! #     verifier: std::sync::Arc<bazaar_auth::Verifier>,
//! #     resolver: std::sync::Arc<dyn bazaar_discovery::Resolver>,
//! # ) -> anyhow::Result<()> {
//! let app = bazaar_payment::build(bazaar_payment::Settings {
//!     addr: "127.0.0.1:0".parse()?,
//!     grpc_addr: "127.0.0.1:0".parse()?,
//!     data_dir: ".bazaar".into(),
//!     database_url: None,
//!     verifier,
//!     resolver,
//!     bus: bazaar_messaging::BusConfig::default(),
//!     psp_url: None,
//!     psp_timeout: bazaar_payment::DEFAULT_PSP_TIMEOUT,
//!     breaker: bazaar_resilience::BreakerConfig::default(),
//! })
//! .await?;
//! app.run_until_stopped(bazaar_runtime::shutdown::signal()).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod domain;
pub mod events;
pub mod grpc;
pub mod http;
pub mod payments;
pub mod psp;
pub mod store;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use bazaar_discovery::Resolver;
use bazaar_messaging::{Bus, BusConfig};
use bazaar_proto::grpc::GrpcListener;
use bazaar_resilience::{BreakerConfig, CircuitBreaker};
use bazaar_runtime::{App, Health};
use bazaar_store::Db;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use payments::{PaymentError, Payments};

/// The service name: database name, metric label, registry name, event source.
pub const SERVICE: &str = "payment";

/// The name of the circuit breaker in front of the processor (`/admin/breakers`, metrics).
pub const PSP_BREAKER: &str = "psp";

/// How long a call to the processor may take unless told otherwise.
pub const DEFAULT_PSP_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the refund worker looks for due requests when nothing wakes it.
const REFUND_POLL: Duration = Duration::from_millis(500);

/// The payment service's OpenAPI 3.1 fragment (the admin path; `Problem` comes from the
/// gateway, which merges every service's fragment into `/api/v1/openapi.json`).
pub const OPENAPI: &str = include_str!("../openapi.json");

/// How to run the payment service.
pub struct Settings {
    /// Where the REST port listens (port 0 picks a free port).
    pub addr: SocketAddr,
    /// Where the gRPC port listens.
    pub grpc_addr: SocketAddr,
    /// Where the SQLite database lives when no `database_url` is given.
    pub data_dir: PathBuf,
    /// A database URL template with `{service}` (e.g. PostgreSQL); SQLite in `data_dir` if `None`.
    pub database_url: Option<String>,
    /// Verifies bearer tokens (the admin routes need an admin).
    pub verifier: Arc<bazaar_auth::Verifier>,
    /// Finds other services: event producers, and the processor when `psp_url` is `None`.
    pub resolver: Arc<dyn Resolver>,
    /// The event bus backend.
    pub bus: BusConfig,
    /// The processor's base URL (`http://host:port`); `None` discovers the `psp` service.
    pub psp_url: Option<String>,
    /// How long one call to the processor may take.
    pub psp_timeout: Duration,
    /// How the breaker in front of the processor judges it.
    pub breaker: BreakerConfig,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("addr", &self.addr)
            .field("grpc_addr", &self.grpc_addr)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(bazaar_store::redact),
            )
            .field("bus", &self.bus.url)
            .field("psp_url", &self.psp_url)
            .field("psp_timeout", &self.psp_timeout)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

/// Opens and migrates the database, starts the event bus and the `shipping.failed`
/// consumer, and binds the REST and gRPC listeners: the returned app is ready to
/// [`App::run_until_stopped`] (which also runs the gRPC server and the refund worker).
pub async fn build(settings: Settings) -> anyhow::Result<App> {
    anyhow::ensure!(
        !settings.psp_timeout.is_zero(),
        "the payment provider timeout must be positive"
    );
    let db = Db::open_for_service(
        SERVICE,
        &settings.data_dir,
        settings.database_url.as_deref(),
        &store::migrations(),
    )
    .await
    .context("open the payment database")?;
    let psp = psp::PspClient::new(
        settings.psp_url,
        settings.resolver.clone(),
        settings.psp_timeout,
    )?;
    // The bus lives as long as the app's background task that holds this guard: cancelled
    // when the app stops, or when an app that never ran is dropped.
    let bus_stop = CancellationToken::new();
    let bus_guard = bus_stop.clone().drop_guard();
    let bus = Bus::start(
        SERVICE,
        db.clone(),
        settings.resolver.clone(),
        settings.bus,
        bus_stop,
    )
    .await
    .context("start the payment event bus")?;
    let breaker = CircuitBreaker::new(PSP_BREAKER, settings.breaker);
    let payments = Payments::new(db.clone(), psp, breaker, bus.clone());
    let wake = Arc::new(Notify::new());
    bus.subscribe(
        events::SHIPPING_FAILED,
        events::ShipmentFailedHandler::new(wake.clone()),
    );
    let worker = events::RefundWorker::new(payments.clone(), wake, REFUND_POLL);

    let health = Health::new();
    let probe = db.clone();
    health.add_check("db", move || {
        let db = probe.clone();
        async move { db.ping().await.map_err(|e| e.to_string()) }
    });
    let router = http::router(db, &bus, health.clone(), settings.verifier);
    let grpc = GrpcListener::bind(settings.grpc_addr).await?;
    let grpc_addr = grpc.local_addr();
    let routes =
        tonic::service::Routes::new(grpc::PaymentServer::new(grpc::PaymentGrpc::new(payments)));
    let app = App::bind(settings.addr, router)
        .await?
        .with_health(health)
        .with_grpc_addr(grpc_addr)
        .with_background("grpc", move |stop| grpc.serve(SERVICE, routes, stop))
        .with_background("refunds", move |stop| worker.run(stop))
        .with_background("bus", move |stop| async move {
            stop.cancelled().await;
            drop(bus_guard);
            bus.stopped().await;
            Ok(())
        });
    tracing::info!(addr = %app.local_addr(), grpc = %grpc_addr, "Payment service listening.");
    Ok(app)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_fragment_parses_and_lists_the_admin_path() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
        assert_eq!(paths, ["/api/v1/admin/payments"]);
        assert!(doc["paths"]["/api/v1/admin/payments"]["get"].is_object());
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        assert!(
            !schemas.contains_key("Problem"),
            "the gateway defines Problem"
        );
        for piece in OPENAPI.split("\"$ref\": \"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap();
            assert!(
                name == "Problem" || schemas.contains_key(name),
                "dangling $ref {name}"
            );
        }
    }
}
