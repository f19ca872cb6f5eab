//! The shipping service: turns confirmed orders into dispatched (or refused) parcels.
//!
//! Fulfilment is choreographed. Shipping consumes `bazaar.order.confirmed.v1` and records a
//! `waiting` shipment, due after a handling time (so a confirmed order can still be
//! cancelled); the row is the durable wait, so a restart loses nothing. A [`worker`] leases
//! due shipments, claims each order from the order service over gRPC (`ClaimForShipment`, the
//! one referee between a customer's cancel and a dispatch), lets the carrier stand-in decide
//! and records `dispatched` + `bazaar.shipping.dispatched.v1` or `failed` +
//! `bazaar.shipping.failed.v1` in one transaction (outbox). A refused claim ends the shipment
//! as `not_claimed` without an event. Admins read shipments at `GET /api/v1/admin/shipments`.
//!
//! ```no_run
//! # async fn run(
//! #     verifier: std::sync::Arc<bazaar_auth::Verifier>,
//! #     resolver: std::sync::Arc<dyn bazaar_discovery::Resolver>,
//! # ) -> anyhow::Result<()> {
//! let app = bazaar_shipping::build(bazaar_shipping::Settings {
//!     addr: "127.0.0.1:0".parse()?,
//!     data_dir: ".bazaar".into(),
//!     database_url: None,
//!     verifier,
//!     resolver,
//!     bus: bazaar_messaging::BusConfig::default(),
//!     handling_time: bazaar_shipping::DEFAULT_HANDLING_TIME,
//!     instance_id: "shipping-1".into(),
//! })
//! .await?;
//! app.run_until_stopped(bazaar_runtime::shutdown::signal()).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod domain;
pub mod events;
pub mod http;
pub mod state;
pub mod store;
pub mod worker;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use bazaar_discovery::Resolver;
use bazaar_messaging::{Bus, BusConfig};
use bazaar_proto::grpc::ServiceChannels;
use bazaar_runtime::App;
use bazaar_store::Db;
use tokio_util::sync::CancellationToken;

pub use http::router;
pub use state::AppState;

/// The service name: database name, metric label, registry name, event source.
pub const SERVICE: &str = "shipping";

/// The OpenAPI 3.1 fragment of shipping's admin paths (`Problem` comes from the gateway).
pub const OPENAPI: &str = include_str!("../openapi.json");

/// How long a confirmed order waits before shipping claims it, unless told otherwise.
pub const DEFAULT_HANDLING_TIME: Duration = Duration::from_secs(2);

/// How to run shipping.
pub struct Settings {
    /// Where to listen (port 0 picks a free port).
    pub addr: SocketAddr,
    /// Where the SQLite database lives when no `database_url` is given.
    pub data_dir: PathBuf,
    /// A database URL template with `{service}` (e.g. PostgreSQL); SQLite in `data_dir` if `None`.
    pub database_url: Option<String>,
    /// Verifies bearer tokens (admin routes).
    pub verifier: Arc<bazaar_auth::Verifier>,
    /// Finds the order service (its event feed and its gRPC port).
    pub resolver: Arc<dyn Resolver>,
    /// The message bus (feeds or NATS).
    pub bus: BusConfig,
    /// How long after confirmation a shipment becomes due ([`DEFAULT_HANDLING_TIME`]).
    pub handling_time: Duration,
    /// This instance's id: the owner named in the leases it takes.
    pub instance_id: String,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("addr", &self.addr)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(bazaar_store::redact),
            )
            .field("bus", &self.bus.url)
            .field("handling_time", &self.handling_time)
            .field("instance_id", &self.instance_id)
            .finish_non_exhaustive()
    }
}

/// Opens and migrates the database, starts the bus (the `order.confirmed` consumer and the
/// outbox relay) and binds the listener; the dispatch worker runs with the returned app.
pub async fn build(settings: Settings) -> anyhow::Result<App> {
    let migrations = [store::MIGRATIONS, bazaar_messaging::MIGRATIONS].concat();
    let db = Db::open_for_service(
        SERVICE,
        &settings.data_dir,
        settings.database_url.as_deref(),
        &migrations,
    )
    .await
    .context("open the shipping database")?;
    let state = AppState::new(db.clone(), settings.verifier)
        .await
        .context("prepare shipping")?;
    // The bus must exist before the router (its routes are part of it), so before the app
    // and its stop token: it gets its own token, cancelled when the app stops or is dropped.
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
    .context("start the shipping bus")?;
    bus.subscribe(
        events::ORDER_CONFIRMED,
        events::OnOrderConfirmed {
            handling_time: settings.handling_time,
        },
    );
    let worker = worker::Worker::new(
        db,
        bus.clone(),
        ServiceChannels::new("order", settings.resolver),
        settings.instance_id,
        worker::WorkerConfig::default(),
    );
    let health = state.health().clone();
    let app = App::bind(settings.addr, router(state, &bus))
        .await?
        .with_health(health)
        .with_background("bus", move |stop| async move {
            let _cancel_bus = bus_guard;
            stop.cancelled().await;
            Ok(())
        })
        .with_background("shipping-worker", move |stop| worker.run(stop));
    tracing::info!(addr = %app.local_addr(), "Shipping listening.");
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
        assert_eq!(paths, ["/api/v1/admin/shipments"]);
        assert!(doc["paths"]["/api/v1/admin/shipments"]["get"].is_object());
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
