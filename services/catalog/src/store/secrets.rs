//! Secrets generated once per catalog database.

use anyhow::Context as _;
use base64::{engine::general_purpose::STANDARD, Engine as _};
use bazaar_store::Db;
use sqlx::Row;

use crate::cursor::CursorKey;

const CURSOR_KEY: &str = "cursor_hmac_key";

/// The key that signs list cursors: generated and stored on first start, read afterwards.
///
/// Replicas starting together race on the insert; `ON CONFLICT DO NOTHING` lets the first
/// win and everyone reads back the winner, so all replicas sign with the same key.
#[tracing::instrument(skip(db))]
pub async fn cursor_key(db: &Db, now_micros: i64) -> anyhow::Result<CursorKey> {
    let fresh = STANDARD.encode(CursorKey::generate_bytes()?);
    let mut tx = db.begin().await.context("begin cursor key")?;
    sqlx::query("INSERT INTO catalog_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
        .bind(CURSOR_KEY)
        .bind(fresh)
        .bind(now_micros)
        .execute(&mut *tx)
        .await
        .context("store cursor key")?;
    let row = sqlx::query("SELECT value FROM catalog_secrets WHERE name = $1")
        .bind(CURSOR_KEY)
        .fetch_one(&mut *tx)
        .await
        .context("read cursor key")?;
    tx.commit().await.context("commit cursor key")?;
    let stored: String = row.try_get(0)?;
    let bytes = STANDARD
        .decode(stored.as_bytes())
        .context("the stored cursor key is not base64")?;
    anyhow::ensure!(bytes.len() >= 16, "the stored cursor key is too short");
    Ok(CursorKey::from_bytes(&bytes))
}
