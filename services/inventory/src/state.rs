//! What every handler (HTTP, gRPC, events) shares.

use std::sync::Arc;

use bazaar_auth::Verifier;
use bazaar_messaging::Bus;
use bazaar_runtime::Health;
use bazaar_store::Db;

/// The shared state of inventory's handlers: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    db: Db,
    bus: Bus,
    verifier: Arc<Verifier>,
    health: Health,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("db", &self.db.url_redacted())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over a migrated inventory database and a started bus; registers the database as
    /// a readiness check.
    pub fn new(db: Db, bus: Bus, verifier: Arc<Verifier>) -> AppState {
        let health = Health::new();
        let probe = db.clone();
        health.add_check("db", move || {
            let db = probe.clone();
            async move { db.ping().await.map_err(|e| e.to_string()) }
        });
        AppState {
            db,
            bus,
            verifier,
            health,
        }
    }

    /// The inventory database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The event bus (wake its relay after a commit that published).
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// The readiness checks and draining flag.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The verifier of bearer tokens.
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }
}
