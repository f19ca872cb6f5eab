//! Secrets generated once per database (such as the key that signs list cursors) and kept in
//! it, so that every replica of a service shares them and they survive restarts.
//!
//! Each service has its own table, created by one of its migrations, of this shape:
//!
//! ```sql
//! CREATE TABLE <service>_secrets (
//!     name TEXT PRIMARY KEY,
//!     value TEXT NOT NULL,      -- standard base64
//!     created_at BIGINT NOT NULL
//! );
//! ```

use anyhow::Context as _;
use base64::{engine::general_purpose::STANDARD, Engine as _};
use sqlx::Row;

use crate::Db;

/// The secret `name` of the secrets table `table`, storing `fresh` first if there is none.
///
/// Replicas starting together race on the insert; `ON CONFLICT DO NOTHING` lets the first
/// win and everyone reads back the winner, so all replicas end up with the same secret.
///
/// `table` is spliced into the SQL, so it is a constant of the calling service (never input)
/// and must be a plain lower-case identifier; anything else is refused.
#[tracing::instrument(skip(db, fresh))]
pub async fn get_or_insert(
    db: &Db,
    table: &'static str,
    name: &str,
    fresh: &[u8],
    now_micros: i64,
) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(
        is_identifier(table),
        "{table:?} is not a valid secrets table name"
    );
    let mut tx = db.begin().await.context("begin secret")?;
    sqlx::query(&format!(
        "INSERT INTO {table} (name, value, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO NOTHING"
    ))
    .bind(name)
    .bind(STANDARD.encode(fresh))
    .bind(now_micros)
    .execute(&mut *tx)
    .await
    .with_context(|| format!("store secret {name}"))?;
    let row = sqlx::query(&format!("SELECT value FROM {table} WHERE name = $1"))
        .bind(name)
        .fetch_one(&mut *tx)
        .await
        .with_context(|| format!("read secret {name}"))?;
    tx.commit().await.context("commit secret")?;
    let stored: String = row.try_get(0)?;
    STANDARD
        .decode(stored.as_bytes())
        .with_context(|| format!("the stored secret {name} is not base64"))
}

/// `[a-z_][a-z0-9_]*`, at most 63 bytes (PostgreSQL's identifier limit).
fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && s.len() <= 63
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identifiers_are_table_names() {
        for ok in ["catalog_secrets", "order_secrets", "_x", "t1"] {
            assert!(is_identifier(ok), "{ok}");
        }
        for bad in [
            "",
            "1t",
            "Secrets",
            "a-b",
            "a b",
            "x; DROP TABLE y",
            "s\"",
            "schema.t",
            &"a".repeat(64),
        ] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }
}
