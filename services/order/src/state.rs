//! What every handler shares.

use std::sync::Arc;

use bazaar_auth::Verifier;
use bazaar_messaging::Bus;
use bazaar_runtime::{time::now_micros, Health};
use bazaar_store::{cursor::CursorKey, Db};
use tokio::sync::Notify;

use crate::{clients::Clients, store};

/// The shared state of the order service's handlers: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    bus: Bus,
    cursors: CursorKey,
    verifier: Arc<Verifier>,
    health: Health,
    clients: Clients,
    saga_wake: Arc<Notify>,
    changed: Arc<crate::waiters::OrderWaiters>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("db", &self.inner.db.url_redacted())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over a migrated order database: loads (or creates) the cursor key and registers
    /// the database as a readiness check.
    pub async fn new(
        db: Db,
        bus: Bus,
        verifier: Arc<Verifier>,
        clients: Clients,
        saga_wake: Arc<Notify>,
        changed: Arc<crate::waiters::OrderWaiters>,
    ) -> anyhow::Result<AppState> {
        let cursors = CursorKey::load_or_create(&db, store::SECRETS_TABLE, now_micros()).await?;
        let health = Health::new();
        let probe = db.clone();
        health.add_check("db", move || {
            let db = probe.clone();
            async move { db.ping().await.map_err(|e| e.to_string()) }
        });
        Ok(AppState {
            inner: Arc::new(Inner {
                db,
                bus,
                cursors,
                verifier,
                health,
                clients,
                saga_wake,
                changed,
            }),
        })
    }

    /// The order database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The event bus (outbox relay, consumers).
    pub fn bus(&self) -> &Bus {
        &self.inner.bus
    }

    /// The readiness checks and draining flag.
    pub fn health(&self) -> &Health {
        &self.inner.health
    }

    /// The verifier of bearer tokens.
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.inner.verifier
    }

    pub(crate) fn cursors(&self) -> &CursorKey {
        &self.inner.cursors
    }

    pub(crate) fn clients(&self) -> &Clients {
        &self.inner.clients
    }

    /// Wakes this instance's saga worker (a saga is due now).
    pub(crate) fn wake_sagas(&self) {
        self.inner.saga_wake.notify_one();
    }

    /// Notified after an order's status changed in this instance.
    pub(crate) fn changed(&self) -> &crate::waiters::OrderWaiters {
        &self.inner.changed
    }
}
