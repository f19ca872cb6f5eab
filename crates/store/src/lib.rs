//! One database per service, SQLite or PostgreSQL, through one SQL code path.
//!
//! A service names its database by URL: `sqlite://path/to/file.db` (the embedded default) or
//! `postgres://user@host/db`. [`Db::open_for_service`] turns the `{service}` placeholder of a
//! URL template into that service's own database, creates it if missing (PostgreSQL) and
//! applies the service's embedded [`Migration`]s in order, once, under a lock.
//!
//! SQL is written once for both backends with portable types: ids as `TEXT`, times as
//! `BIGINT` microseconds, money as `BIGINT` minor units, booleans as `BIGINT` 0/1, and `$1`
//! placeholders (SQLite accepts them too).
//!
//! Lists are keyset-paged with signed cursors ([`cursor`]) whose key each database keeps in
//! its own secrets table ([`secrets`]).
//!
//! Writes go through [`Db::begin`] (or [`Db::writer`]); reads through [`Db::reader`]. On
//! SQLite the writer is a single connection: SQLite has one writer at a time anyway, and
//! queueing in the pool instead of in SQLite's busy handler means no `SQLITE_BUSY` under
//! load and no lock upgrade deadlocks. Readers use the WAL and never block the writer.
//!
//! # Durability on SQLite
//! The database runs in WAL mode with `synchronous=FULL` by default: a transaction whose
//! commit has returned survives both `kill -9` of the process and a power loss / OS crash,
//! because the WAL is fsynced on every commit. `BAZAAR_SQLITE_SYNCHRONOUS=normal` skips that
//! fsync: commits still survive a process crash (the WAL is in the OS page cache), but the
//! last transactions before a power loss can be lost (the database stays consistent).
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use bazaar_store::{Db, Migration};
//! static MIGRATIONS: &[Migration] = &[Migration::new(1, "products", "CREATE TABLE products (id TEXT PRIMARY KEY)")];
//! let db = Db::open_for_service("catalog", std::path::Path::new(".bazaar"), None, MIGRATIONS).await?;
//! let mut tx = db.begin().await?;
//! sqlx::query("INSERT INTO products (id) VALUES ($1)").bind("p1").execute(&mut *tx).await?;
//! tx.commit().await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod cursor;
mod migrate;
pub mod secrets;

use std::{path::Path, str::FromStr, time::Duration};

use anyhow::Context as _;
pub use migrate::Migration;
use sqlx::{
    any::{AnyConnectOptions, AnyPoolOptions},
    AnyPool, ConnectOptions, Executor,
};

/// The SQL database kind behind a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file (WAL).
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

/// A transaction on a service's database.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// A service's database: a read pool and a write pool (the same pool on PostgreSQL).
#[derive(Clone, Debug)]
pub struct Db {
    backend: Backend,
    reader: AnyPool,
    writer: AnyPool,
    url_redacted: String,
}

impl Db {
    /// Opens the database of `service`: from `url_template` with `{service}` replaced, or an
    /// SQLite file `<data_dir>/<service>.db` when no template is given. Applies migrations.
    pub async fn open_for_service(
        service: &str,
        data_dir: &Path,
        url_template: Option<&str>,
        migrations: &[Migration],
    ) -> anyhow::Result<Db> {
        let url = match url_template {
            Some(t) => t.replace("{service}", service),
            None => {
                std::fs::create_dir_all(data_dir)
                    .with_context(|| format!("create data directory {}", data_dir.display()))?;
                format!(
                    "sqlite://{}",
                    data_dir.join(format!("{service}.db")).display()
                )
            }
        };
        Self::connect(&url, migrations).await
    }

    /// Connects to `url` (creating the database if missing) and applies `migrations`.
    pub async fn connect(url: &str, migrations: &[Migration]) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(url)?;
        let url_redacted = redact(url);
        let db = match backend {
            Backend::Sqlite => Self::connect_sqlite(url).await,
            Backend::Postgres => Self::connect_postgres(url).await,
        }
        .with_context(|| format!("connect to database {url_redacted}"))?;
        migrate::apply(&db, migrations)
            .await
            .with_context(|| format!("migrate database {url_redacted}"))?;
        Ok(db)
    }

    async fn connect_sqlite(url: &str) -> anyhow::Result<Db> {
        let url = if url.contains('?') {
            url.to_owned()
        } else {
            format!("{url}?mode=rwc")
        };
        let synchronous = match std::env::var("BAZAAR_SQLITE_SYNCHRONOUS").ok().as_deref() {
            Some("normal" | "NORMAL") => "NORMAL",
            _ => "FULL",
        };
        let pragmas = format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; PRAGMA busy_timeout = 10000; \
             PRAGMA foreign_keys = ON;"
        );
        let opts = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
        let p = pragmas.clone();
        let writer = AnyPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                let p = p.clone();
                Box::pin(async move {
                    conn.execute(sqlx::raw_sql(&p)).await?;
                    Ok(())
                })
            })
            .connect_with(opts.clone())
            .await?;
        // The writer created the file and switched it to WAL before any reader opens it.
        let reader = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                let p = pragmas.clone();
                Box::pin(async move {
                    conn.execute(sqlx::raw_sql(&p)).await?;
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        Ok(Db {
            backend: Backend::Sqlite,
            reader,
            writer,
            url_redacted: redact(&url),
        })
    }

    async fn connect_postgres(url: &str) -> anyhow::Result<Db> {
        use sqlx::migrate::MigrateDatabase;
        if !sqlx::Any::database_exists(url).await.unwrap_or(false) {
            // Another instance may create it at the same time: only fail if it still is missing.
            if let Err(e) = sqlx::Any::create_database(url).await {
                if !sqlx::Any::database_exists(url).await.unwrap_or(false) {
                    return Err(e).context("create database");
                }
            }
        }
        let opts = AnyConnectOptions::from_str(url)?.disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(postgres_pool_size()?)
            .idle_timeout(Duration::from_secs(60))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await?;
        Ok(Db {
            backend: Backend::Postgres,
            reader: pool.clone(),
            writer: pool,
            url_redacted: redact(url),
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool for reads.
    pub fn reader(&self) -> &AnyPool {
        &self.reader
    }

    /// The pool for writes outside an explicit transaction.
    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// Starts a write transaction.
    ///
    /// On SQLite it is `BEGIN IMMEDIATE`: the write lock is taken at the start, waiting in the
    /// busy handler while another *process* (a replica on the same file) writes. A deferred
    /// transaction would take it at its first write instead, and SQLite fails such an upgrade
    /// at once with `SQLITE_BUSY` when another connection has written since the read began.
    ///
    /// The `BEGIN IMMEDIATE` runs to completion on a task of its own: sqlx has an await point
    /// after a custom `BEGIN` succeeded and before the transaction exists, so a caller
    /// cancelled right there (a client hanging up) would leave the connection inside a
    /// transaction nobody can end, and every later `begin` would fail. Finished on its own
    /// task, the transaction is dropped (rolled back) when nobody waits for it any more.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => {
                let pool = self.writer.clone();
                tokio::spawn(async move { pool.begin_with("BEGIN IMMEDIATE").await })
                    .await
                    .map_err(|e| sqlx::Error::Io(std::io::Error::other(e)))?
            }
            Backend::Postgres => self.writer.begin().await,
        }
    }

    /// The URL with any password removed, for logs.
    pub fn url_redacted(&self) -> &str {
        &self.url_redacted
    }

    /// A cheap round trip, for readiness probes.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map(|_| ())
    }

    /// Closes both pools.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

fn backend_of(url: &str) -> anyhow::Result<Backend> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        anyhow::bail!(
            "unsupported database URL scheme (use sqlite:// or postgres://): {}",
            redact(url)
        )
    }
}

/// Connections per service to PostgreSQL: `BAZAAR_DB_MAX_CONNECTIONS` (1–1000), default 10.
/// Every replica of every service holds up to this many, so keep the product under the
/// server's `max_connections`.
fn postgres_pool_size() -> anyhow::Result<u32> {
    match std::env::var("BAZAAR_DB_MAX_CONNECTIONS") {
        Err(_) => Ok(10),
        Ok(v) => v
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| anyhow::anyhow!("BAZAAR_DB_MAX_CONNECTIONS `{v}` must be 1-1000")),
    }
}

/// Removes the password of a URL, for logs and errors.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Whether an error is a unique-constraint violation (SQLite and PostgreSQL alike).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || db
                    .code()
                    .is_some_and(|c| c == "23505" || c == "2067" || c == "1555")
        }
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }

    #[test]
    fn refuses_unknown_schemes() {
        assert!(backend_of("mysql://x").is_err());
        assert_eq!(backend_of("postgresql://x/y").unwrap(), Backend::Postgres);
    }
}

/// Helpers for tests that run against both backends.
pub mod testing {
    /// A fresh PostgreSQL database URL on the server of `BAZAAR_TEST_POSTGRES_URL`
    /// (created on first connect), or `None` with a printed reason when it is unset.
    /// Names start with `bazaar_test_` so a CI run can drop what earlier runs left.
    pub fn postgres_url(prefix: &str) -> Option<String> {
        let Ok(server) = std::env::var("BAZAAR_TEST_POSTGRES_URL") else {
            eprintln!("skipping the PostgreSQL variant: BAZAAR_TEST_POSTGRES_URL is not set");
            return None;
        };
        let server = server.trim_end_matches('/');
        let id = uuid::Uuid::new_v4().simple().to_string();
        Some(format!("{server}/bazaar_test_{prefix}_{}", &id[..12]))
    }

    /// The template form of [`postgres_url`]: `…/<prefix>_<random>_{service}`.
    pub fn postgres_template(prefix: &str) -> Option<String> {
        postgres_url(prefix).map(|u| format!("{u}_{{service}}"))
    }
}
