//! The catalog service: products, their prices and categories, searchable and paged.
//!
//! Anyone may list and read products; admins create and edit them. Lists are newest first
//! with keyset pagination on the time-ordered product id, behind opaque, HMAC-signed
//! cursors that are bound to the query they were issued for. The crate is a library: the
//! `bazaar` binary (or a test) calls [`build`] and runs the returned [`App`].
//!
//! ```no_run
//! # async fn run(verifier: std::sync::Arc<bazaar_auth::Verifier>) -> anyhow::Result<()> {
//! let app = bazaar_catalog::build(bazaar_catalog::Settings {
//!     addr: "127.0.0.1:0".parse()?,
//!     data_dir: ".bazaar".into(),
//!     database_url: None,
//!     seed_demo: true,
//!     verifier,
//!     grpc_addr: "127.0.0.1:0".parse()?,
//!     // Finds inventory's event feed (the registry or static addresses in a deployment).
//!     resolver: bazaar_discovery::StaticResolver::from_env(),
//!     bus: bazaar_messaging::BusConfig::default(),
//! })
//! .await?;
//! app.run_until_stopped(bazaar_runtime::shutdown::signal()).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod cursor;
pub use bazaar_contracts::demo;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod http;
pub mod state;
pub mod store;

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context as _;
use bazaar_runtime::{time::now_micros, App};
use bazaar_store::Db;

pub use http::router;
pub use state::AppState;

/// The service name: database name, metric label, registry name.
pub const SERVICE: &str = "catalog";

/// The catalog's OpenAPI 3.1 fragment (paths and schemas; `Problem` comes from the gateway,
/// which merges every service's fragment into `/api/v1/openapi.json`).
pub const OPENAPI: &str = include_str!("../openapi.json");

/// How to run the catalog.
pub struct Settings {
    /// Where to listen (port 0 picks a free port).
    pub addr: SocketAddr,
    /// Where the SQLite database lives when no `database_url` is given.
    pub data_dir: PathBuf,
    /// A database URL template with `{service}` (e.g. PostgreSQL); SQLite in `data_dir` if `None`.
    pub database_url: Option<String>,
    /// Whether to insert the demo catalog into an empty database.
    pub seed_demo: bool,
    /// Verifies bearer tokens (built by the caller from identity's JWKS).
    pub verifier: Arc<bazaar_auth::Verifier>,
    /// Where the gRPC API (`GetProducts`) listens (port 0 picks a free port).
    pub grpc_addr: SocketAddr,
    /// Finds inventory's event feed.
    pub resolver: Arc<dyn bazaar_discovery::Resolver>,
    /// The message bus (feeds or NATS).
    pub bus: bazaar_messaging::BusConfig,
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
            .field("seed_demo", &self.seed_demo)
            .finish_non_exhaustive()
    }
}

/// Opens and migrates the database, seeds the demo catalog if asked and binds the listener:
/// the returned app is ready to [`App::run_until_stopped`].
pub async fn build(settings: Settings) -> anyhow::Result<App> {
    let db = Db::open_for_service(
        SERVICE,
        &settings.data_dir,
        settings.database_url.as_deref(),
        &store::all_migrations(),
    )
    .await
    .context("open the catalog database")?;
    if settings.seed_demo {
        let inserted = store::seed::seed_demo(&db, now_micros())
            .await
            .context("seed the demo catalog")?;
        if inserted > 0 {
            tracing::info!(inserted, "Seeded the demo catalog.");
        }
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let bus = bazaar_messaging::Bus::start(
        SERVICE,
        db.clone(),
        settings.resolver.clone(),
        settings.bus.clone(),
        stop.clone(),
    )
    .await
    .context("start the message bus")?;
    bus.subscribe(events::LEVELS, events::LevelChanged);
    let state = AppState::new(db.clone(), settings.verifier)
        .await
        .context("prepare the catalog")?
        .with_bus(bus);
    let health = state.health().clone();
    let grpc = bazaar_proto::grpc::GrpcListener::bind(settings.grpc_addr).await?;
    let grpc_addr = grpc.local_addr();
    let routes = tonic::service::Routes::new(
        bazaar_proto::catalog::catalog_server::CatalogServer::new(grpc::CatalogGrpc::new(db)),
    );
    let app = App::bind(settings.addr, router(state))
        .await?
        .with_health(health)
        .with_grpc_addr(grpc_addr)
        .with_background("grpc", move |stop| grpc.serve(SERVICE, routes, stop))
        .with_background("bus", move |app_stop| async move {
            app_stop.cancelled().await;
            stop.cancel();
            Ok(())
        });
    tracing::info!(addr = %app.local_addr(), %grpc_addr, "Catalog listening.");
    Ok(app)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_fragment_parses_and_lists_the_catalog_paths() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
        assert_eq!(paths, ["/api/v1/products", "/api/v1/products/{id}"]);
        assert!(doc["paths"]["/api/v1/products"]["get"].is_object());
        assert!(doc["paths"]["/api/v1/products"]["post"].is_object());
        assert!(doc["paths"]["/api/v1/products/{id}"]["get"].is_object());
        assert!(doc["paths"]["/api/v1/products/{id}"]["patch"].is_object());
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        assert!(
            !schemas.contains_key("Problem"),
            "the gateway defines Problem"
        );
        // Every reference points at a schema defined here, or at the gateway's Problem.
        let text = OPENAPI;
        for piece in text.split("\"$ref\": \"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap();
            assert!(
                name == "Problem" || schemas.contains_key(name),
                "dangling $ref {name}"
            );
        }
    }
}
