//! Embedded, ordered, checksummed migrations applied once per database.

use anyhow::Context as _;
use sqlx::{Executor, Row};

use crate::{Backend, Db};

/// One schema change: a version (applied in ascending order), a name and portable SQL
/// (several statements allowed).
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Applied in ascending order; never reuse or renumber one that has shipped.
    pub version: i64,
    /// What it does, for humans.
    pub name: &'static str,
    /// The statements.
    pub sql: &'static str,
}

impl Migration {
    /// A migration.
    pub const fn new(version: i64, name: &'static str, sql: &'static str) -> Self {
        Self { version, name, sql }
    }

    fn checksum(&self) -> String {
        // FNV-1a: enough to notice an edited migration, no crypto dependency needed.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.sql.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }
}

pub(crate) async fn apply(db: &Db, migrations: &[Migration]) -> anyhow::Result<()> {
    let mut sorted: Vec<&Migration> = migrations.iter().collect();
    sorted.sort_by_key(|m| m.version);
    let mut tx = db.begin().await?;
    if db.backend() == Backend::Postgres {
        // Replicas starting together: one applies, the others wait and then find it done.
        tx.execute("SELECT pg_advisory_xact_lock(7305551)").await?;
    }
    tx.execute(sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS bazaar_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
         checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    ))
    .await?;
    let rows = sqlx::query("SELECT version, checksum FROM bazaar_migrations")
        .fetch_all(&mut *tx)
        .await?;
    let applied: std::collections::HashMap<i64, String> = rows
        .iter()
        .map(|r| (r.get::<i64, _>(0), r.get::<String, _>(1)))
        .collect();
    for m in sorted {
        if let Some(sum) = applied.get(&m.version) {
            anyhow::ensure!(
                *sum == m.checksum(),
                "migration {} ({}) was changed after it was applied",
                m.version,
                m.name
            );
            continue;
        }
        tx.execute(sqlx::raw_sql(m.sql))
            .await
            .with_context(|| format!("apply migration {} ({})", m.version, m.name))?;
        sqlx::query("INSERT INTO bazaar_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)")
            .bind(m.version)
            .bind(m.name)
            .bind(m.checksum())
            .bind(now_micros())
            .execute(&mut *tx)
            .await?;
        tracing::info!(version = m.version, name = m.name, "Applied migration.");
    }
    tx.commit().await?;
    Ok(())
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
