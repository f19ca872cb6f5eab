#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Per-database secrets and the cursor key kept in them, against real SQLite files and a real
//! PostgreSQL server (when `BAZAAR_TEST_POSTGRES_URL` is set).

use bazaar_store::{
    cursor::{CursorError, CursorKey, SECRET_NAME},
    secrets, Db, Migration,
};

/// The shape every service's secrets table has (see `catalog_secrets`, `order_secrets`, …).
static MIGRATIONS: &[Migration] = &[Migration::new(
    1,
    "secrets",
    "CREATE TABLE test_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL, created_at BIGINT NOT NULL)",
)];

const TABLE: &str = "test_secrets";

async fn sqlite(dir: &tempfile::TempDir, name: &str) -> Db {
    Db::open_for_service(name, dir.path(), None, MIGRATIONS)
        .await
        .unwrap()
}

async fn postgres(prefix: &str) -> Option<Db> {
    let url = bazaar_store::testing::postgres_url(prefix)?;
    Some(Db::connect(&url, MIGRATIONS).await.unwrap())
}

async fn the_first_secret_wins_and_is_kept(db: &Db) {
    let first = secrets::get_or_insert(db, TABLE, "k", b"first", 1)
        .await
        .unwrap();
    assert_eq!(first, b"first");
    let again = secrets::get_or_insert(db, TABLE, "k", b"second", 2)
        .await
        .unwrap();
    assert_eq!(again, b"first", "a stored secret is never replaced");
    let other = secrets::get_or_insert(db, TABLE, "other", b"second", 3)
        .await
        .unwrap();
    assert_eq!(other, b"second", "secrets are kept by name");
    let (value, created_at): (String, i64) =
        sqlx::query_as("SELECT value, created_at FROM test_secrets WHERE name = 'k'")
            .fetch_one(db.reader())
            .await
            .unwrap();
    assert_eq!(value, "Zmlyc3Q=", "stored as standard base64");
    assert_eq!(created_at, 1);
}

async fn replicas_starting_together_share_one_cursor_key(db: &Db) {
    let keys = start_replicas(db).await;
    let cursor = keys[0].seal("last", "scope");
    for key in &keys {
        assert_eq!(key.open(&cursor, "scope"), Ok("last".to_owned()));
    }
    // And after a "restart": the key is read back, not made anew.
    let later = CursorKey::load_or_create(db, TABLE, 99).await.unwrap();
    assert_eq!(later.open(&cursor, "scope"), Ok("last".to_owned()));
}

async fn start_replicas(db: &Db) -> Vec<CursorKey> {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move { CursorKey::load_or_create(&db, TABLE, i).await })
        })
        .collect();
    let mut keys = Vec::new();
    for t in tasks {
        keys.push(t.await.unwrap().unwrap());
    }
    keys
}

#[tokio::test]
async fn sqlite_the_first_secret_wins_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    the_first_secret_wins_and_is_kept(&sqlite(&dir, "svc").await).await;
}

#[tokio::test]
async fn postgres_the_first_secret_wins_and_is_kept() {
    let Some(db) = postgres("secrets").await else {
        return;
    };
    the_first_secret_wins_and_is_kept(&db).await;
}

#[tokio::test]
async fn sqlite_replicas_starting_together_share_one_cursor_key() {
    let dir = tempfile::tempdir().unwrap();
    replicas_starting_together_share_one_cursor_key(&sqlite(&dir, "svc").await).await;
}

#[tokio::test]
async fn postgres_replicas_starting_together_share_one_cursor_key() {
    let Some(db) = postgres("secrets").await else {
        return;
    };
    replicas_starting_together_share_one_cursor_key(&db).await;
}

#[tokio::test]
async fn each_database_has_its_own_cursor_key() {
    let dir = tempfile::tempdir().unwrap();
    let a = CursorKey::load_or_create(&sqlite(&dir, "a").await, TABLE, 1)
        .await
        .unwrap();
    let b = CursorKey::load_or_create(&sqlite(&dir, "b").await, TABLE, 1)
        .await
        .unwrap();
    assert_eq!(b.open(&a.seal("last", ""), ""), Err(CursorError::Forged));
}

#[tokio::test]
async fn a_short_or_corrupt_stored_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir, "svc").await;
    sqlx::query("INSERT INTO test_secrets (name, value, created_at) VALUES ($1, 'c2hvcnQ=', 0)")
        .bind(SECRET_NAME)
        .execute(db.writer())
        .await
        .unwrap();
    let err = CursorKey::load_or_create(&db, TABLE, 1).await.unwrap_err();
    assert!(err.to_string().contains("too short"), "{err:#}");

    sqlx::query("UPDATE test_secrets SET value = 'not base64!' WHERE name = $1")
        .bind(SECRET_NAME)
        .execute(db.writer())
        .await
        .unwrap();
    let err = CursorKey::load_or_create(&db, TABLE, 1).await.unwrap_err();
    assert!(err.to_string().contains("not base64"), "{err:#}");
}

#[tokio::test]
async fn a_table_name_that_is_not_an_identifier_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir, "svc").await;
    let err = secrets::get_or_insert(&db, "test_secrets; DROP TABLE x", "k", b"v", 1)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a valid"), "{err:#}");
    let err = CursorKey::load_or_create(&db, "missing_table", 1)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("store secret"), "{err:#}");
}
