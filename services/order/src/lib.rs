//! The order service: the heart of the shop.
//!
//! - **Placement** (`POST /api/v1/orders`) is idempotent per user and `Idempotency-Key`: the
//!   order, its saga and its `order.placed` event are written in one transaction, and a
//!   repeat of the request answers with the same order.
//! - **The saga** ([`saga`]) orchestrates placement durably: reserve stock (inventory),
//!   charge the card (payment; on a timeout it asks before it charges again; while the
//!   payment provider is unavailable the order waits as `payment_pending` until a deadline),
//!   confirm — and compensates customer cancellations and failures. Every step is resumable
//!   after a crash, and two instances never run one saga at once.
//! - **The referee** between a customer's cancel and shipping's dispatch is one conditional
//!   update on each side: `POST /api/v1/orders/{id}/cancel` and gRPC `ClaimForShipment`.
//! - **Events** ([`events`]): the catalog's prices are replicated locally, shipping and
//!   payment outcomes update orders, and the order-history list is a read model projected
//!   from events (CQRS).
//!
//! ```no_run
//! # async fn run(verifier: std::sync::Arc<bazaar_auth::Verifier>, resolver: std::sync::Arc<dyn bazaar_discovery::Resolver>) -> anyhow::Result<()> {
//! let app = bazaar_order::build(bazaar_order::Settings {
//!     addr: "127.0.0.1:0".parse()?,
//!     grpc_addr: "127.0.0.1:0".parse()?,
//!     data_dir: ".bazaar".into(),
//!     database_url: None,
//!     verifier,
//!     resolver,
//!     bus: bazaar_order::BusConfig::default(),
//!     payment_pending_deadline: std::time::Duration::from_secs(300),
//!     saga: bazaar_order::SagaConfig::default(),
//!     instance_id: "order-1".into(),
//! })
//! .await?;
//! app.run_until_stopped(bazaar_runtime::shutdown::signal()).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod clients;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod http;
pub mod placement;
pub mod saga;
pub mod state;
pub mod store;
pub mod waiters;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use bazaar_discovery::Resolver;
use bazaar_messaging::Bus;
use bazaar_proto::{grpc::GrpcListener, order::order_server::OrderServer};
use bazaar_runtime::{time::now_micros, App};
use bazaar_store::Db;
use tokio::sync::Notify;

pub use bazaar_messaging::BusConfig;
pub use http::router;
pub use saga::SagaConfig;
pub use state::AppState;

/// The service name: database name, metric label, registry name, event source.
pub const SERVICE: &str = "order";

/// The order service's OpenAPI 3.1 fragment (`/api/v1/orders…` and `/api/v1/admin/sagas…`;
/// `Problem` comes from the gateway, which merges every service's fragment).
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Idempotency keys are kept at least 24 hours; the cleanup deletes them after this.
pub const IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(48 * 3600);

/// How often old idempotency keys are deleted.
const CLEANUP_INTERVAL: Duration = Duration::from_secs(600);

/// How to run the order service.
pub struct Settings {
    /// Where the HTTP API listens (port 0 picks a free port).
    pub addr: SocketAddr,
    /// Where the gRPC API (`ClaimForShipment`) listens.
    pub grpc_addr: SocketAddr,
    /// Where the SQLite database lives when no `database_url` is given.
    pub data_dir: PathBuf,
    /// A database URL template with `{service}` (e.g. PostgreSQL); SQLite in `data_dir` if `None`.
    pub database_url: Option<String>,
    /// Verifies bearer tokens.
    pub verifier: Arc<bazaar_auth::Verifier>,
    /// Finds catalog, inventory and payment (gRPC) and the producers of consumed events.
    pub resolver: Arc<dyn Resolver>,
    /// The event bus backend.
    pub bus: BusConfig,
    /// How long an order may wait as `payment_pending` before it is rejected.
    pub payment_pending_deadline: Duration,
    /// The saga worker's timing.
    pub saga: SagaConfig,
    /// This instance's name (in saga leases and logs).
    pub instance_id: String,
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
            .field("bus", &self.bus)
            .field("payment_pending_deadline", &self.payment_pending_deadline)
            .field("saga", &self.saga)
            .field("instance_id", &self.instance_id)
            .finish_non_exhaustive()
    }
}

fn check(settings: &Settings) -> anyhow::Result<()> {
    let s = &settings.saga;
    anyhow::ensure!(
        !s.step_timeout.is_zero(),
        "the saga step timeout must be positive"
    );
    anyhow::ensure!(
        s.max_attempts_per_step >= 1,
        "a saga step needs at least one attempt"
    );
    anyhow::ensure!(
        !s.poll_interval.is_zero() && !s.base_backoff.is_zero(),
        "the saga poll interval and backoff must be positive"
    );
    // A compensation makes two calls under one lease; the lease must outlast both.
    let step_bound = (s.step_timeout + Duration::from_millis(500)) * 2;
    anyhow::ensure!(
        s.lease > step_bound,
        "the saga lease ({:?}) must be longer than two calls ({step_bound:?})",
        s.lease
    );
    anyhow::ensure!(
        !settings.instance_id.is_empty(),
        "the instance id must not be empty"
    );
    Ok(())
}

/// Opens and migrates the database, starts the event bus and its consumers, binds the HTTP
/// and gRPC listeners and prepares the saga worker: the returned app is ready to
/// [`App::run_until_stopped`].
pub async fn build(settings: Settings) -> anyhow::Result<App> {
    check(&settings)?;
    let db = Db::open_for_service(
        SERVICE,
        &settings.data_dir,
        settings.database_url.as_deref(),
        &store::all_migrations(),
    )
    .await
    .context("open the order database")?;

    // The bus's tasks stop with the app: the guard below cancels them when the app stops,
    // or when it is dropped without ever running.
    let bus_stop = tokio_util::sync::CancellationToken::new();
    let bus = Bus::start(
        SERVICE,
        db.clone(),
        settings.resolver.clone(),
        settings.bus.clone(),
        bus_stop.clone(),
    )
    .await
    .context("start the event bus")?;
    events::subscribe(&bus);

    let clients = clients::Clients::new(settings.resolver.clone(), settings.saga.step_timeout);
    let wake = Arc::new(Notify::new());
    let changed = Arc::new(waiters::OrderWaiters::default());
    let state = AppState::new(
        db.clone(),
        bus.clone(),
        settings.verifier.clone(),
        clients.clone(),
        wake.clone(),
        changed.clone(),
    )
    .await
    .context("prepare the order service")?;
    let worker = Arc::new(saga::Worker {
        db: db.clone(),
        bus: bus.clone(),
        clients,
        config: settings.saga.clone(),
        payment_pending_deadline: settings.payment_pending_deadline,
        instance_id: settings.instance_id.clone(),
        wake,
        changed,
    });

    let grpc = GrpcListener::bind(settings.grpc_addr).await?;
    let grpc_addr = grpc.local_addr();
    let grpc_routes =
        tonic::service::Routes::new(OrderServer::new(grpc::OrderGrpc::new(db.clone())));
    let health = state.health().clone();
    let cleanup_db = db.clone();
    let guard = bus_stop.drop_guard();
    let app = App::bind(settings.addr, router(state))
        .await?
        .with_health(health)
        .with_grpc_addr(grpc_addr)
        .with_background("bus", move |stop| async move {
            let guard = guard;
            stop.cancelled().await;
            drop(guard);
            bus.stopped().await;
            Ok(())
        })
        .with_background("grpc", move |stop| grpc.serve(SERVICE, grpc_routes, stop))
        .with_background("sagas", move |stop| worker.run(stop))
        .with_background("idempotency-cleanup", move |stop| cleanup(cleanup_db, stop));
    tracing::info!(addr = %app.local_addr(), grpc = %grpc_addr, instance = %settings.instance_id, "Order service listening.");
    Ok(app)
}

/// Deletes idempotency keys past [`IDEMPOTENCY_RETENTION`] now and every few minutes.
async fn cleanup(db: Db, stop: tokio_util::sync::CancellationToken) -> anyhow::Result<()> {
    let retention = i64::try_from(IDEMPOTENCY_RETENTION.as_micros()).unwrap_or(i64::MAX);
    loop {
        match store::idempotency::cleanup(&db, now_micros().saturating_sub(retention)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "Deleted old idempotency keys."),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "Could not delete old idempotency keys.")
            }
        }
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(CLEANUP_INTERVAL) => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_fragment_parses_and_lists_the_order_paths() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
        assert_eq!(
            paths,
            [
                "/api/v1/admin/sagas",
                "/api/v1/admin/sagas/{id}/abort",
                "/api/v1/admin/sagas/{id}/retry",
                "/api/v1/orders",
                "/api/v1/orders/{id}",
                "/api/v1/orders/{id}/cancel"
            ]
        );
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
