//! What every handler shares.

use std::sync::Arc;

use bazaar_auth::Verifier;
use bazaar_runtime::{time::now_micros, Health};
use bazaar_store::Db;

use crate::{cursor::CursorKey, store};

/// The shared state of the catalog's handlers: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    db: Db,
    cursors: Arc<CursorKey>,
    verifier: Arc<Verifier>,
    health: Health,
    bus: Option<bazaar_messaging::Bus>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("db", &self.db.url_redacted())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over a migrated catalog database: loads (or on first start creates) the cursor
    /// key and registers the database as a readiness check.
    pub async fn new(db: Db, verifier: Arc<Verifier>) -> anyhow::Result<AppState> {
        let cursors =
            Arc::new(CursorKey::load_or_create(&db, store::SECRETS_TABLE, now_micros()).await?);
        let health = Health::new();
        let probe = db.clone();
        health.add_check("db", move || {
            let db = probe.clone();
            async move { db.ping().await.map_err(|e| e.to_string()) }
        });
        Ok(AppState {
            db,
            cursors,
            verifier,
            health,
            bus: None,
        })
    }

    /// The state with `bus` woken after each write that published an event.
    #[must_use]
    pub fn with_bus(mut self, bus: bazaar_messaging::Bus) -> Self {
        self.bus = Some(bus);
        self
    }

    /// Wakes the outbox relay after a commit that published events.
    pub fn published(&self) {
        if let Some(bus) = &self.bus {
            bus.notify();
        }
    }

    /// The event bus, when the catalog runs with one.
    pub fn bus(&self) -> Option<&bazaar_messaging::Bus> {
        self.bus.as_ref()
    }

    /// The extra routes of the message bus (event feed, dead letters), if any.
    pub fn bus_routes(&self) -> Option<axum::Router> {
        self.bus.as_ref().map(bazaar_messaging::Bus::routes)
    }

    /// The catalog database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The readiness checks and draining flag.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The verifier of bearer tokens.
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }

    pub(crate) fn cursors(&self) -> &CursorKey {
        &self.cursors
    }
}
