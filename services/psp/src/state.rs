//! What every handler shares.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock,
    },
    time::Duration,
};

use bazaar_auth::Verifier;
use bazaar_runtime::Health;
use bazaar_store::Db;

use crate::domain::Behaviour;

/// The shared state of the processor's handlers: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    db: Db,
    verifier: Arc<Verifier>,
    health: Health,
    behaviour: Arc<RwLock<Behaviour>>,
    calls: Arc<AtomicU64>,
    timeout_token_delay: Duration,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("db", &self.db.url_redacted())
            .field("behaviour", &self.behaviour())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over a migrated database, behaving well until told otherwise; the database is
    /// registered as a readiness check.
    pub fn new(db: Db, verifier: Arc<Verifier>, timeout_token_delay: Duration) -> AppState {
        let health = Health::new();
        let probe = db.clone();
        health.add_check("db", move || {
            let db = probe.clone();
            async move { db.ping().await.map_err(|e| e.to_string()) }
        });
        AppState {
            db,
            verifier,
            health,
            behaviour: Arc::default(),
            calls: Arc::default(),
            timeout_token_delay,
        }
    }

    /// The processor's database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The readiness checks and draining flag.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The verifier of bearer tokens (admin routes).
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }

    /// The faults currently injected.
    pub fn behaviour(&self) -> Behaviour {
        *self
            .behaviour
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces the faults injected.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self
            .behaviour
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = behaviour;
    }

    /// Counts a `/v1` call that reached the processor (failed ones included).
    pub fn count_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// How many `/v1` calls reached the processor since it started.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// How late `tok_timeout` charges are answered.
    pub fn timeout_token_delay(&self) -> Duration {
        self.timeout_token_delay
    }
}
