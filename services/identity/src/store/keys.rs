//! The `signing_keys` table: the private keys, their ages and retirements.

use anyhow::Context as _;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bazaar_auth::SigningKey;
use bazaar_store::{Db, Tx};
use sqlx::Row as _;

/// A key as stored.
pub struct StoredKey {
    /// The key id.
    pub kid: String,
    /// The PKCS#8 v2 DER document.
    pub pkcs8: Vec<u8>,
    /// Microseconds since the Unix epoch.
    pub created_at: i64,
    /// When it stopped signing, if it has.
    pub retired_at: Option<i64>,
}

impl StoredKey {
    /// The usable key.
    pub fn signing_key(&self) -> anyhow::Result<SigningKey> {
        SigningKey::from_pkcs8(self.kid.clone(), &self.pkcs8)
            .with_context(|| format!("load signing key {}", self.kid))
    }
}

impl std::fmt::Debug for StoredKey {
    // The private key must not reach a log through a derive.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "kid, pkcs8, created_at, retired_at";

/// The current key: the newest one not retired.
#[tracing::instrument(skip_all)]
pub async fn current(db: &Db) -> anyhow::Result<Option<StoredKey>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM signing_keys WHERE retired_at IS NULL \
         ORDER BY created_at DESC, kid DESC LIMIT 1"
    ))
    .fetch_optional(db.reader())
    .await
    .context("load the current signing key")?;
    row.as_ref().map(key_of).transpose()
}

/// The keys still published: those not retired, and those retired after
/// `retired_after_micros`. Newest first.
#[tracing::instrument(skip(db))]
pub async fn published(db: &Db, retired_after_micros: i64) -> anyhow::Result<Vec<StoredKey>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM signing_keys WHERE retired_at IS NULL OR retired_at > $1 \
         ORDER BY created_at DESC, kid DESC"
    ))
    .bind(retired_after_micros)
    .fetch_all(db.reader())
    .await
    .context("load the published signing keys")?;
    rows.iter().map(key_of).collect()
}

/// Stores `key` as the current key unless there already is one; `true` if it was stored.
#[tracing::instrument(skip_all, fields(kid = key.kid()))]
pub async fn insert_first(db: &Db, key: &SigningKey, now_micros: i64) -> anyhow::Result<bool> {
    let mut tx = db.begin().await.context("begin")?;
    lock(&mut tx).await?;
    let existing = sqlx::query("SELECT kid FROM signing_keys WHERE retired_at IS NULL LIMIT 1")
        .fetch_optional(&mut *tx)
        .await
        .context("look for a current signing key")?;
    if existing.is_some() {
        return Ok(false);
    }
    insert(&mut tx, key, now_micros).await?;
    tx.commit().await.context("commit the first signing key")?;
    Ok(true)
}

/// Retires every current key at `now_micros` and makes `key` the current one.
#[tracing::instrument(skip_all, fields(kid = key.kid()))]
pub async fn rotate(db: &Db, key: &SigningKey, now_micros: i64) -> anyhow::Result<()> {
    let mut tx = db.begin().await.context("begin")?;
    lock(&mut tx).await?;
    sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
        .bind(now_micros)
        .execute(&mut *tx)
        .await
        .context("retire the current signing key")?;
    // "Newest" must mean the new key even if the clock stepped back or two rotations share a
    // microsecond.
    let newest: i64 = sqlx::query("SELECT COALESCE(MAX(created_at), 0) FROM signing_keys")
        .fetch_one(&mut *tx)
        .await
        .context("find the newest signing key")?
        .try_get(0)?;
    insert(&mut tx, key, now_micros.max(newest.saturating_add(1))).await?;
    tx.commit().await.context("commit the key rotation")?;
    Ok(())
}

/// Serialises key changes across replicas (see the migration).
async fn lock(tx: &mut Tx) -> anyhow::Result<()> {
    sqlx::query("UPDATE signing_key_lock SET generation = generation + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await
        .context("lock the signing keys")?;
    Ok(())
}

async fn insert(tx: &mut Tx, key: &SigningKey, created_at: i64) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO signing_keys (kid, pkcs8, created_at) VALUES ($1, $2, $3)")
        .bind(key.kid())
        .bind(STANDARD.encode(key.pkcs8_der()))
        .bind(created_at)
        .execute(&mut **tx)
        .await
        .context("insert a signing key")?;
    Ok(())
}

fn key_of(row: &sqlx::any::AnyRow) -> anyhow::Result<StoredKey> {
    let kid: String = row.try_get("kid")?;
    let pkcs8 = STANDARD
        .decode(row.try_get::<String, _>("pkcs8")?)
        .with_context(|| format!("decode signing key {kid}"))?;
    Ok(StoredKey {
        kid,
        pkcs8,
        created_at: row.try_get("created_at")?,
        retired_at: row.try_get("retired_at")?,
    })
}
