//! Identity: Bazaar's user accounts and the access tokens that prove who a caller is.
//!
//! It registers users (argon2id password hashes), exchanges an email and password for a
//! short-lived EdDSA JWT signed with its current Ed25519 key, serves the profile of the
//! caller, and publishes the public keys at `/.well-known/jwks.json` so that the gateway and
//! every service can verify tokens without asking identity about each one. Keys live in the
//! database and rotate on an admin call; a retired key stays published until every token it
//! signed has expired. On an empty database it creates the first admin account.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let settings = bazaar_identity::Settings {
//!     addr: "127.0.0.1:0".parse()?,
//!     data_dir: ".bazaar".into(),
//!     database_url: None,
//!     admin_password: None,
//!     bus: bazaar_messaging::BusConfig::default(),
//!     resolver: bazaar_discovery::StaticResolver::from_env(),
//! };
//! let app = bazaar_identity::build(settings).await?;
//! println!("identity on port {}", app.port());
//! app.run_until_stopped(bazaar_runtime::shutdown::signal()).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bootstrap;
pub mod domain;
mod http;
pub mod passwords;
pub mod signing;
pub mod state;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use bazaar_runtime::{App, Health, ServiceStack};
use bazaar_store::Db;

pub use http::{router, IdentityState, RegisterRequest, TokenResponse, UserResponse};
pub use signing::KeyRotation;
pub use state::AppState;

/// The service name: metric label, log field and database name.
pub const SERVICE: &str = "identity";

/// This service's part of the public OpenAPI 3.1 document (paths and schemas; the gateway
/// merges the fragments and defines the shared `Problem` schema).
pub const OPENAPI: &str = include_str!("../openapi.json");

/// How identity is run.
#[derive(Clone)]
pub struct Settings {
    /// Where to listen (port 0 picks a free one).
    pub addr: SocketAddr,
    /// Where the SQLite database lives when no `database_url` is given.
    pub data_dir: PathBuf,
    /// A database URL template with `{service}`, e.g.
    /// `postgres://postgres@127.0.0.1/bazaar_{service}`; SQLite in `data_dir` when `None`.
    pub database_url: Option<String>,
    /// The password of the admin account created on an empty database
    /// (`BAZAAR_ADMIN_PASSWORD`); a random one is generated and printed once when `None`.
    pub admin_password: Option<String>,
    /// Identity publishes `user_registered`; the bus relays its outbox.
    pub bus: bazaar_messaging::BusConfig,
    /// Discovery (the bus needs it to find producers; identity consumes nothing today).
    pub resolver: std::sync::Arc<dyn bazaar_discovery::Resolver>,
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
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Opens and migrates the database, loads or creates the signing key, bootstraps the admin
/// account if there are no accounts, and binds the listener: ready to run.
pub async fn build(settings: Settings) -> anyhow::Result<App> {
    let Settings {
        addr,
        data_dir,
        database_url,
        admin_password,
        bus,
        resolver,
    } = settings;
    let db = Db::open_for_service(
        SERVICE,
        &data_dir,
        database_url.as_deref(),
        &store::all_migrations(),
    )
    .await
    .context("open the identity database")?;
    let passwords = passwords::Passwords::new().await?;
    let keys = signing::Keys::load_or_create(db.clone())
        .await
        .context("load the signing keys")?;
    bootstrap::ensure_admin(&db, &passwords, admin_password)
        .await
        .context("bootstrap the admin account")?;
    let stop = tokio_util::sync::CancellationToken::new();
    let bus = bazaar_messaging::Bus::start(SERVICE, db.clone(), resolver, bus, stop.clone())
        .await
        .context("start the message bus")?;
    let bus_routes = bus.routes();
    let state = AppState::new(db.clone(), passwords, keys, Some(bus));

    let health = Health::new();
    health.add_check("db", move || {
        let db = db.clone();
        async move { db.ping().await.map_err(|e| e.to_string()) }
    });
    let stack = ServiceStack::new(SERVICE, health.clone()).with_verifier(state.verifier());
    let app = App::bind(addr, stack.wrap(router(state).merge(bus_routes)))
        .await?
        .with_health(health)
        .with_background("bus", move |app_stop| async move {
            app_stop.cancelled().await;
            stop.cancel();
            Ok(())
        });
    tracing::info!(addr = %app.local_addr(), "Identity is listening.");
    Ok(app)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_fragment_is_json_and_lists_the_public_paths() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        let mut names: Vec<&str> = paths.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "/.well-known/jwks.json",
                "/api/v1/auth/token",
                "/api/v1/users",
                "/api/v1/users/me",
                "/api/v1/users/{id}"
            ]
        );
        assert!(doc["paths"]["/api/v1/users"]["post"].is_object());
        assert!(doc["paths"]["/api/v1/auth/token"]["post"].is_object());
        assert!(doc["paths"]["/api/v1/users/me"]["get"].is_object());
        assert!(doc["paths"]["/.well-known/jwks.json"]["get"].is_object());
        // The gateway defines Problem; a local definition would clash when merging.
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        assert!(!schemas.contains_key("Problem"));
    }

    #[test]
    fn every_schema_reference_resolves_here_or_is_the_shared_problem() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(refs.contains(&"#/components/schemas/Problem".to_owned()));
        for r in refs {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            assert!(name == "Problem" || schemas.contains_key(name), "{r}");
        }
    }

    fn collect_refs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("$ref", serde_json::Value::String(s)) => out.push(s.clone()),
                        _ => collect_refs(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn settings_debug_hides_the_admin_password_and_database_password() {
        let settings = Settings {
            addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: "x".into(),
            database_url: Some("postgres://u:dbsecret@h/bazaar_{service}".into()),
            admin_password: Some("adminsecret".into()),
            bus: bazaar_messaging::BusConfig::default(),
            resolver: bazaar_discovery::StaticResolver::new(Default::default()),
        };
        let debug = format!("{settings:?}");
        assert!(!debug.contains("adminsecret"), "{debug}");
        assert!(!debug.contains("dbsecret"), "{debug}");
    }
}
