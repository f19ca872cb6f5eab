//! The inventory service: stock per SKU, reservations for orders, and the stock-movement
//! ledger that accounts for every unit.
//!
//! - **gRPC** `bazaar.inventory.v1.Inventory` ([`grpc`]): Reserve (all lines or nothing),
//!   Release and Commit, each idempotent per order id — the calls of the order saga.
//! - **Admin REST** ([`http`]): read a SKU's levels, count stock, restock, and read a SKU's
//!   ledger with a check of its invariant.
//! - **Events** ([`events`]): publishes reserved / released / committed / level_changed
//!   through the outbox of the transaction that made the change; consumes the catalog's new
//!   products and the shipping outcomes (dispatched commits, failed releases).
//!
//! Stock is never oversold and never negative, on SQLite and PostgreSQL alike, however many
//! calls race (see [`store`]); for every SKU `on_hand = Σ adjustments + Σ commits` (commits
//! are negative) and `0 ≤ reserved ≤ on_hand`.
//!
//! ```no_run
//! # async fn run(
//! #     verifier: std::sync::Arc<bazaar_auth::Verifier>,
//! #     resolver: std::sync::Arc<dyn bazaar_discovery::Resolver>,
//! # ) -> anyhow::Result<()> {
//! let app = bazaar_inventory::build(bazaar_inventory::Settings {
//!     addr: "127.0.0.1:0".parse()?,
//!     grpc_addr: "127.0.0.1:0".parse()?,
//!     data_dir: ".bazaar".into(),
//!     database_url: None,
//!     seed_demo: true,
//!     verifier,
//!     resolver,
//!     bus: bazaar_messaging::BusConfig::default(),
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
pub mod state;
pub mod store;

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context as _;
use bazaar_discovery::Resolver;
use bazaar_messaging::{Bus, BusConfig};
use bazaar_proto::grpc::GrpcListener;
use bazaar_runtime::{time::now_micros, App};
use bazaar_store::Db;
use tokio_util::sync::CancellationToken;

pub use http::router;
pub use state::AppState;

/// The service name: database name, metric label, registry name, event source.
pub const SERVICE: &str = "inventory";

/// Inventory's OpenAPI 3.1 fragment (paths and schemas; `Problem` comes from the gateway,
/// which merges every service's fragment into `/api/v1/openapi.json`).
pub const OPENAPI: &str = include_str!("../openapi.json");

/// How to run inventory.
pub struct Settings {
    /// Where the HTTP API listens (port 0 picks a free port).
    pub addr: SocketAddr,
    /// Where the gRPC server listens (port 0 picks a free port).
    pub grpc_addr: SocketAddr,
    /// Where the SQLite database lives when no `database_url` is given.
    pub data_dir: PathBuf,
    /// A database URL template with `{service}` (e.g. PostgreSQL); SQLite in `data_dir` if `None`.
    pub database_url: Option<String>,
    /// Whether to stock the demo catalog's SKUs in an empty database.
    pub seed_demo: bool,
    /// Verifies bearer tokens (built by the caller from identity's JWKS).
    pub verifier: Arc<bazaar_auth::Verifier>,
    /// Finds the producers of consumed events (feeds backend).
    pub resolver: Arc<dyn Resolver>,
    /// The event bus's backend and timings.
    pub bus: BusConfig,
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
            .field("seed_demo", &self.seed_demo)
            .field("bus", &self.bus.url.as_deref().map(bazaar_store::redact))
            .finish_non_exhaustive()
    }
}

/// Opens and migrates the database (inventory's tables and the messaging tables), stocks
/// the demo SKUs if asked, starts the event bus and the consumers, and binds the HTTP and
/// gRPC listeners: the returned app is ready to [`App::run_until_stopped`], which also runs
/// the gRPC server and stops the bus.
pub async fn build(settings: Settings) -> anyhow::Result<App> {
    let migrations = [store::MIGRATIONS, bazaar_messaging::MIGRATIONS].concat();
    let db = Db::open_for_service(
        SERVICE,
        &settings.data_dir,
        settings.database_url.as_deref(),
        &migrations,
    )
    .await
    .context("open the inventory database")?;
    if settings.seed_demo {
        let stocked = store::seed::seed_demo(&db, now_micros())
            .await
            .context("stock the demo catalog")?;
        if stocked > 0 {
            tracing::info!(stocked, "Stocked the demo catalog.");
        }
    }
    // The bus must exist before the router (its routes are part of it), and the app's own
    // stop token only once the router is bound: the bus gets a token of its own, cancelled
    // by the app's "bus" task when the app stops (or by the guard if building fails).
    let bus_stop = CancellationToken::new();
    let guard = bus_stop.clone().drop_guard();
    let bus = Bus::start(
        SERVICE,
        db.clone(),
        settings.resolver,
        settings.bus,
        bus_stop.clone(),
    )
    .await
    .context("start the event bus")?;
    let state = AppState::new(db, bus.clone(), settings.verifier);
    let health = state.health().clone();
    let grpc = GrpcListener::bind(settings.grpc_addr).await?;
    let grpc_addr = grpc.local_addr();
    let server = grpc::InventoryGrpc::new(state.clone()).into_server();
    let app = App::bind(settings.addr, router(state)).await?;
    events::subscribe(&bus);
    guard.disarm();
    let app = app
        .with_health(health)
        .with_grpc_addr(grpc_addr)
        .with_background("grpc", move |stop| {
            grpc.serve(SERVICE, tonic::service::Routes::new(server), stop)
        })
        .with_background("bus", move |stop| async move {
            stop.cancelled().await;
            bus_stop.cancel();
            bus.stopped().await;
            Ok(())
        });
    tracing::info!(addr = %app.local_addr(), grpc_addr = %grpc_addr, "Inventory listening.");
    Ok(app)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_fragment_parses_and_lists_the_inventory_paths() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
        assert_eq!(
            paths,
            ["/api/v1/inventory/{sku}", "/api/v1/inventory/{sku}/restock"]
        );
        assert!(doc["paths"]["/api/v1/inventory/{sku}"]["get"].is_object());
        assert!(doc["paths"]["/api/v1/inventory/{sku}"]["put"].is_object());
        assert!(doc["paths"]["/api/v1/inventory/{sku}/restock"]["post"].is_object());
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
