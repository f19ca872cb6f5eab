//! The notification service: tells users what happened to them and their orders.
//!
//! It consumes `bazaar.identity.user_registered.v1` (a welcome) and the order service's
//! `confirmed`, `rejected`, `cancelled` and `shipped` events, and keeps one notification per
//! event (the inbox skips redeliveries; `event_id` is unique besides). Users list theirs at
//! `GET /api/v1/me/notifications` (newest first, with the unread count, behind HMAC-signed
//! cursors) and mark one read with `POST /api/v1/me/notifications/{id}/read`.
//!
//! ```no_run
//! # async fn run(
//! #     verifier: std::sync::Arc<bazaar_auth::Verifier>,
//! #     resolver: std::sync::Arc<dyn bazaar_discovery::Resolver>,
//! # ) -> anyhow::Result<()> {
//! let app = bazaar_notification::build(bazaar_notification::Settings {
//!     addr: "127.0.0.1:0".parse()?,
//!     data_dir: ".bazaar".into(),
//!     database_url: None,
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
pub mod http;
pub mod state;
pub mod store;

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context as _;
use bazaar_discovery::Resolver;
use bazaar_messaging::{Bus, BusConfig};
use bazaar_runtime::App;
use bazaar_store::Db;
use tokio_util::sync::CancellationToken;

pub use http::router;
pub use state::AppState;

/// The service name: database name, metric label, registry name.
pub const SERVICE: &str = "notification";

/// The OpenAPI 3.1 fragment of `/api/v1/me/notifications` (`Problem` comes from the gateway).
pub const OPENAPI: &str = include_str!("../openapi.json");

/// How to run notification.
pub struct Settings {
    /// Where to listen (port 0 picks a free port).
    pub addr: SocketAddr,
    /// Where the SQLite database lives when no `database_url` is given.
    pub data_dir: PathBuf,
    /// A database URL template with `{service}` (e.g. PostgreSQL); SQLite in `data_dir` if `None`.
    pub database_url: Option<String>,
    /// Verifies bearer tokens.
    pub verifier: Arc<bazaar_auth::Verifier>,
    /// Finds the producers (identity, order) whose feeds it reads.
    pub resolver: Arc<dyn Resolver>,
    /// The message bus (feeds or NATS).
    pub bus: BusConfig,
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
            .finish_non_exhaustive()
    }
}

/// Opens and migrates the database, starts the bus and its two consumers, and binds the
/// listener: the returned app is ready to [`App::run_until_stopped`].
pub async fn build(settings: Settings) -> anyhow::Result<App> {
    let migrations = [store::MIGRATIONS, bazaar_messaging::MIGRATIONS].concat();
    let db = Db::open_for_service(
        SERVICE,
        &settings.data_dir,
        settings.database_url.as_deref(),
        &migrations,
    )
    .await
    .context("open the notification database")?;
    let state = AppState::new(db.clone(), settings.verifier)
        .await
        .context("prepare notification")?;
    // The bus must exist before the router (its routes are part of it), so before the app
    // and its stop token: it gets its own token, cancelled when the app stops or is dropped.
    let bus_stop = CancellationToken::new();
    let bus_guard = bus_stop.clone().drop_guard();
    let bus = Bus::start(SERVICE, db, settings.resolver, settings.bus, bus_stop)
        .await
        .context("start the notification bus")?;
    bus.subscribe(events::USERS, events::Notify);
    bus.subscribe(events::ORDERS, events::Notify);
    let health = state.health().clone();
    let app = App::bind(settings.addr, router(state, &bus))
        .await?
        .with_health(health)
        .with_background("bus", move |stop| async move {
            let _cancel_bus = bus_guard;
            stop.cancelled().await;
            Ok(())
        });
    tracing::info!(addr = %app.local_addr(), "Notification listening.");
    Ok(app)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_fragment_parses_and_lists_the_notification_paths() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
        assert_eq!(
            paths,
            [
                "/api/v1/me/notifications",
                "/api/v1/me/notifications/{id}/read"
            ]
        );
        assert!(doc["paths"]["/api/v1/me/notifications"]["get"].is_object());
        assert!(doc["paths"]["/api/v1/me/notifications/{id}/read"]["post"].is_object());
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
