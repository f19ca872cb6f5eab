//! The token signing keys: which one signs, which ones are published, and rotation.
//!
//! Keys live in the database so that a restart keeps them and replicas sharing a PostgreSQL
//! database share them. The current key is the newest unretired one; it is looked up on
//! every token issue (one small query next to an argon2 verification), so a rotation done by
//! another replica takes effect here at once instead of this replica signing with a retired
//! key that drops out of the JWKS while its tokens are still in use.

use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use bazaar_auth::{FetchFuture, JwkSet, KeySource, SigningKey, Verifier, ACCESS_TOKEN_TTL_SECS};
use bazaar_runtime::time::now_micros;
use bazaar_store::Db;

use crate::store::keys;

/// How long a retired key stays published: long enough for every token it signed to expire,
/// plus a minute for clock skew and verifiers that fetched just before the rotation.
pub const RETIRED_KEY_GRACE_SECS: i64 = ACCESS_TOKEN_TTL_SECS + 60;

/// The outcome of a rotation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyRotation {
    /// The id of the new current key.
    pub kid: String,
    /// The ids of every published key, newest first (the new one included).
    pub published: Vec<String>,
}

/// The signing keys of this identity process and the verifier that trusts them.
pub struct Keys {
    db: Db,
    current: RwLock<Arc<SigningKey>>,
    verifier: Arc<Verifier>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("current", &self.cached().kid())
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// Loads the current key, creating the first one if the database has none, and a verifier
    /// that knows every published key and asks the database when it meets an unknown `kid`.
    pub async fn load_or_create(db: Db) -> anyhow::Result<Keys> {
        if keys::current(&db).await?.is_none() {
            let key = SigningKey::generate().context("generate the first signing key")?;
            if keys::insert_first(&db, &key, now_micros()).await? {
                tracing::info!(kid = key.kid(), "Created the first token signing key.");
            }
        }
        // Whoever won a race for the first key, everyone uses the one now in the database.
        let current = keys::current(&db)
            .await?
            .context("no signing key after creating one")?
            .signing_key()?;
        let verifier = Arc::new(Verifier::new(DbKeySource { db: db.clone() }));
        let keys = Keys {
            db,
            current: RwLock::new(Arc::new(current)),
            verifier,
        };
        keys.refresh_verifier().await?;
        Ok(keys)
    }

    /// The verifier for this service's own routes.
    pub fn verifier(&self) -> Arc<Verifier> {
        Arc::clone(&self.verifier)
    }

    /// The key to sign with now: the newest unretired key in the database.
    pub async fn current(&self) -> anyhow::Result<Arc<SigningKey>> {
        let stored = keys::current(&self.db)
            .await?
            .context("the database has no current signing key")?;
        let cached = self.cached();
        if cached.kid() == stored.kid {
            return Ok(cached);
        }
        // Another replica rotated: sign with its key, and trust it here before handing out a
        // token this process could otherwise not verify for up to the verifier's refresh
        // interval.
        let key = Arc::new(stored.signing_key()?);
        self.refresh_verifier().await?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&key);
        tracing::info!(
            kid = key.kid(),
            "Switched to a signing key created elsewhere."
        );
        Ok(key)
    }

    /// Makes a new key current and retires the previous one (it stays published for
    /// [`RETIRED_KEY_GRACE_SECS`]).
    pub async fn rotate(&self) -> anyhow::Result<KeyRotation> {
        let key = SigningKey::generate().context("generate a signing key")?;
        keys::rotate(&self.db, &key, now_micros()).await?;
        let kid = key.kid().to_owned();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
        let published = self.refresh_verifier().await?;
        tracing::info!(%kid, "Rotated the token signing key.");
        Ok(KeyRotation {
            kid,
            published: published.keys.into_iter().map(|k| k.kid).collect(),
        })
    }

    /// The public keys to publish at `/.well-known/jwks.json`.
    pub async fn published(&self) -> anyhow::Result<JwkSet> {
        published_jwks(&self.db).await
    }

    fn cached(&self) -> Arc<SigningKey> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    async fn refresh_verifier(&self) -> anyhow::Result<JwkSet> {
        let set = published_jwks(&self.db).await?;
        self.verifier.replace_keys(set.clone());
        Ok(set)
    }
}

/// The published keys in JWKS form, newest first.
async fn published_jwks(db: &Db) -> anyhow::Result<JwkSet> {
    let retired_after = now_micros().saturating_sub(RETIRED_KEY_GRACE_SECS * 1_000_000);
    let stored = keys::published(db, retired_after).await?;
    let keys = stored
        .iter()
        .map(|k| k.signing_key().map(|key| key.public_jwk()))
        .collect::<anyhow::Result<_>>()?;
    Ok(JwkSet { keys })
}

/// A [`KeySource`] reading the published keys straight from identity's database, so a
/// replica learns of a rotation made by another one the first time it meets the new `kid`.
#[derive(Clone)]
pub struct DbKeySource {
    db: Db,
}

impl DbKeySource {
    /// A source over `db`.
    pub fn new(db: Db) -> DbKeySource {
        DbKeySource { db }
    }
}

impl std::fmt::Debug for DbKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbKeySource")
            .field("db", &self.db.url_redacted())
            .finish()
    }
}

impl KeySource for DbKeySource {
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(async move { published_jwks(&self.db).await.map_err(Into::into) })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use bazaar_auth::Claims;

    async fn db(dir: &tempfile::TempDir) -> Db {
        Db::open_for_service("identity", dir.path(), None, crate::store::MIGRATIONS)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_first_start_creates_one_key_and_a_restart_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = Keys::load_or_create(db(&dir).await).await.unwrap();
        let kid = first.current().await.unwrap().kid().to_owned();
        let again = Keys::load_or_create(db(&dir).await).await.unwrap();
        assert_eq!(again.current().await.unwrap().kid(), kid);
        assert_eq!(again.verifier().key_ids(), vec![kid]);
    }

    #[tokio::test]
    async fn a_rotated_key_stays_published_for_the_grace_period_then_drops_out() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(&dir).await;
        let keys = Keys::load_or_create(db.clone()).await.unwrap();
        let old = keys.current().await.unwrap().kid().to_owned();
        let rotation = keys.rotate().await.unwrap();
        assert_ne!(rotation.kid, old);
        assert_eq!(rotation.published, vec![rotation.kid.clone(), old.clone()]);
        assert_eq!(keys.current().await.unwrap().kid(), rotation.kid);

        // Pretend the rotation happened just over the grace period ago.
        let long_ago = now_micros() - (RETIRED_KEY_GRACE_SECS + 1) * 1_000_000;
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE kid = $2")
            .bind(long_ago)
            .bind(&old)
            .execute(db.writer())
            .await
            .unwrap();
        let kids: Vec<String> = keys
            .published()
            .await
            .unwrap()
            .keys
            .into_iter()
            .map(|k| k.kid)
            .collect();
        assert_eq!(kids, vec![rotation.kid.clone()]);

        // Just inside the grace period it is still there.
        let recently = now_micros() - (RETIRED_KEY_GRACE_SECS - 5) * 1_000_000;
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE kid = $2")
            .bind(recently)
            .bind(&old)
            .execute(db.writer())
            .await
            .unwrap();
        assert_eq!(keys.published().await.unwrap().keys.len(), 2);
    }

    #[tokio::test]
    async fn a_rotation_by_another_replica_is_picked_up_for_signing_and_verifying() {
        let dir = tempfile::tempdir().unwrap();
        let here = Keys::load_or_create(db(&dir).await).await.unwrap();
        let there = Keys::load_or_create(db(&dir).await).await.unwrap();
        let rotation = there.rotate().await.unwrap();

        // A token signed over there verifies here (the verifier asks the database).
        let token = there
            .current()
            .await
            .unwrap()
            .sign(&Claims::new_access("u1", vec![], bazaar_auth::unix_now()))
            .unwrap();
        assert_eq!(here.verifier().verify(&token).await.unwrap().sub, "u1");

        // And this replica signs with the new key from now on.
        assert_eq!(here.current().await.unwrap().kid(), rotation.kid);
    }
}
