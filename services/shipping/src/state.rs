//! What every handler shares.

use std::sync::Arc;

use bazaar_auth::Verifier;
use bazaar_runtime::{time::now_micros, Health};
use bazaar_store::{cursor::CursorKey, Db};

use crate::store;

/// The shared state of shipping's handlers: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    db: Db,
    cursors: Arc<CursorKey>,
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
    /// State over a migrated shipping database: loads (or on first start creates) the cursor
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
        })
    }

    /// The shipping database.
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
