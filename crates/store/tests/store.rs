#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The store against real SQLite files and a real PostgreSQL server.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use bazaar_store::{is_unique_violation, Backend, Db, Migration};
use sqlx::Row;

static MIGRATIONS: &[Migration] = &[
    Migration::new(1, "items", "CREATE TABLE items (id TEXT PRIMARY KEY, qty BIGINT NOT NULL, created_at BIGINT NOT NULL)"),
    Migration::new(
        2,
        "item names",
        "ALTER TABLE items ADD COLUMN name TEXT NOT NULL DEFAULT ''; CREATE INDEX items_by_name ON items (name);",
    ),
];

async fn sqlite_db(dir: &tempfile::TempDir) -> Db {
    Db::open_for_service("test", dir.path(), None, MIGRATIONS)
        .await
        .unwrap()
}

async fn exercise(db: &Db) {
    // Placeholders, types and transactions are the same on both backends.
    let mut tx = db.begin().await.unwrap();
    sqlx::query("INSERT INTO items (id, qty, created_at, name) VALUES ($1, $2, $3, $4)")
        .bind("a")
        .bind(3_i64)
        .bind(1_700_000_000_000_000_i64)
        .bind("apple")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = db.begin().await.unwrap();
    sqlx::query("INSERT INTO items (id, qty, created_at) VALUES ($1, $2, $3)")
        .bind("b")
        .bind(1_i64)
        .bind(0_i64)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    let rows = sqlx::query("SELECT id, qty, created_at, name FROM items ORDER BY id")
        .fetch_all(db.reader())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "a rolled back insert must leave nothing");
    assert_eq!(rows[0].get::<String, _>("id"), "a");
    assert_eq!(rows[0].get::<i64, _>("qty"), 3);
    assert_eq!(rows[0].get::<i64, _>("created_at"), 1_700_000_000_000_000);
    assert_eq!(rows[0].get::<String, _>("name"), "apple");

    let dup = sqlx::query("INSERT INTO items (id, qty, created_at) VALUES ($1, $2, $3)")
        .bind("a")
        .bind(1_i64)
        .bind(0_i64)
        .execute(db.writer())
        .await
        .unwrap_err();
    assert!(is_unique_violation(&dup), "{dup}");
    db.ping().await.unwrap();
}

#[tokio::test]
async fn sqlite_round_trips_rolls_back_and_detects_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(&dir).await;
    assert_eq!(db.backend(), Backend::Sqlite);
    exercise(&db).await;
}

#[tokio::test]
async fn postgres_round_trips_rolls_back_and_detects_duplicates() {
    let Some(url) = bazaar_store::testing::postgres_url("bazaar_store") else {
        return;
    };
    let db = Db::connect(&url, MIGRATIONS).await.unwrap();
    assert_eq!(db.backend(), Backend::Postgres);
    exercise(&db).await;
    // Applying the same migrations again (a restart, a second replica) changes nothing.
    let again = Db::connect(&url, MIGRATIONS).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bazaar_migrations")
        .fetch_one(again.reader())
        .await
        .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn postgres_replicas_migrating_at_once_apply_each_migration_once() {
    let Some(url) = bazaar_store::testing::postgres_url("bazaar_store") else {
        return;
    };
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { Db::connect(&url, MIGRATIONS).await.map(|_| ()) })
        })
        .collect();
    for h in handles {
        h.await.unwrap().unwrap();
    }
    let db = Db::connect(&url, MIGRATIONS).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bazaar_migrations")
        .fetch_one(db.reader())
        .await
        .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn migrations_are_applied_once_and_edits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(sqlite_db(&dir).await);
    let db = sqlite_db(&dir).await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bazaar_migrations")
        .fetch_one(db.reader())
        .await
        .unwrap();
    assert_eq!(n, 2);
    db.close().await;
    static EDITED: &[Migration] = &[Migration::new(
        1,
        "items",
        "CREATE TABLE items (id TEXT PRIMARY KEY, qty BIGINT NOT NULL, created_at BIGINT)",
    )];
    let err = Db::open_for_service("test", dir.path(), None, EDITED)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("changed after it was applied"),
        "{err:#}"
    );
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_full_sync() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(&dir).await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(db.reader())
        .await
        .unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(db.writer())
        .await
        .unwrap();
    assert_eq!(sync, 2, "FULL");
}

/// Run as a child process by `committed_rows_survive_kill_9`: commits forever, reporting each.
#[tokio::test]
async fn child_writer() {
    let Ok(dir) = std::env::var("BAZAAR_STORE_CHILD_DIR") else {
        return;
    };
    let db = Db::open_for_service("test", std::path::Path::new(&dir), None, MIGRATIONS)
        .await
        .unwrap();
    for i in 0_i64.. {
        let mut tx = db.begin().await.unwrap();
        sqlx::query("INSERT INTO items (id, qty, created_at) VALUES ($1, $2, $3)")
            .bind(format!("row-{i}"))
            .bind(i)
            .bind(0_i64)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        println!("committed {i}");
    }
}

#[tokio::test]
async fn committed_rows_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env("BAZAAR_STORE_CHILD_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut last_committed = -1_i64;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("committed ") {
            last_committed = n.parse().unwrap();
            if last_committed >= 50 {
                break;
            }
        }
    }
    // SIGKILL: no destructor, no checkpoint, no flush.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(last_committed >= 50);
    let db = sqlite_db(&dir).await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM items")
        .fetch_one(db.reader())
        .await
        .unwrap();
    assert!(
        n > last_committed,
        "{n} rows after kill, but {last_committed} commits had returned"
    );
}

/// Two replicas of a service on one SQLite file (two pools here, as two processes would have):
/// read-then-write transactions from both never fail with `SQLITE_BUSY`, and no increment is
/// lost. With deferred transactions the loser of a lock upgrade fails at once.
#[tokio::test]
async fn sqlite_replicas_on_one_file_serialise_read_then_write_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let a = sqlite_db(&dir).await;
    let b = sqlite_db(&dir).await;
    sqlx::query("INSERT INTO items (id, qty, created_at) VALUES ('n', 0, 0)")
        .execute(a.writer())
        .await
        .unwrap();
    let bump = |db: Db| async move {
        for _ in 0..50 {
            let mut tx = db.begin().await.unwrap();
            let qty: i64 = sqlx::query("SELECT qty FROM items WHERE id = 'n'")
                .fetch_one(&mut *tx)
                .await
                .unwrap()
                .get(0);
            tokio::task::yield_now().await;
            sqlx::query("UPDATE items SET qty = $1 WHERE id = 'n'")
                .bind(qty + 1)
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
    };
    let (ra, rb) = tokio::join!(tokio::spawn(bump(a.clone())), tokio::spawn(bump(b)));
    ra.unwrap();
    rb.unwrap();
    let qty: i64 = sqlx::query("SELECT qty FROM items WHERE id = 'n'")
        .fetch_one(a.reader())
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        qty, 100,
        "every read-then-write transaction of both replicas counted once"
    );
}

/// A caller that gives up while `begin` is under way (a client hanging up mid-request) must
/// not leave the single write connection inside a transaction nobody owns: every later
/// `begin` would fail.
#[tokio::test]
async fn a_begin_cancelled_midway_leaves_the_writer_usable() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(&dir).await;
    for i in 0..400u64 {
        let give_up = Duration::from_micros((i * 37) % 400);
        let _ = tokio::time::timeout(give_up, db.begin()).await;
        let mut tx = tokio::time::timeout(Duration::from_secs(10), db.begin())
            .await
            .expect("begin hangs")
            .unwrap_or_else(|e| panic!("begin after a cancelled one (round {i}): {e}"));
        sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }
}
