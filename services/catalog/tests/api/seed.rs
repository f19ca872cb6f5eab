//! The demo catalog.

use std::{collections::HashSet, sync::Arc};

use crate::helpers::{Backend, TestApp, TestDb};

async fn seeded_once(backend: Backend) {
    let Some(db) = TestDb::new(backend) else {
        return;
    };
    let db = Arc::new(db);
    let first = TestApp::start(
        db.clone(),
        bazaar_auth::SigningKey::generate().unwrap(),
        true,
    )
    .await;
    let products = all_products(&first).await;
    assert!(products.len() >= 20, "{} demo products", products.len());
    let categories: HashSet<&str> = products
        .iter()
        .map(|p| p["category"].as_str().unwrap())
        .collect();
    assert!(categories.len() >= 5, "{categories:?}");
    assert!(products.iter().all(|p| p["price"]["currency"] == "USD"));
    assert_eq!(
        products[0]["sku"], "BK-1001",
        "the demo file's order is the list's order"
    );

    // A restart (or a second replica) with seeding on finds products and adds none.
    let second = TestApp::start(
        db.clone(),
        bazaar_auth::SigningKey::generate().unwrap(),
        true,
    )
    .await;
    let again = all_products(&second).await;
    assert_eq!(again, products);
}

async fn all_products(app: &TestApp) -> Vec<serde_json::Value> {
    let page = app.get_json("/api/v1/products?limit=100").await;
    assert_eq!(page["next_cursor"], serde_json::Value::Null);
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_demo_catalog_is_seeded_once_on_sqlite() {
    seeded_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_demo_catalog_is_seeded_once_on_postgres() {
    seeded_once(Backend::Postgres).await;
}

#[tokio::test]
async fn without_the_demo_setting_the_catalog_starts_empty() {
    let app = TestApp::spawn(Backend::Sqlite, false).await.unwrap();
    assert!(all_products(&app).await.is_empty());
}

#[tokio::test]
async fn the_demo_is_not_added_to_a_catalog_that_has_products() {
    let db = Arc::new(TestDb::new(Backend::Sqlite).unwrap());
    let key = bazaar_auth::SigningKey::generate().unwrap();
    let app = TestApp::start(db.clone(), key, false).await;
    app.create_ok(&crate::helpers::product("OWN-1", "Our own", "misc"))
        .await;
    let restarted = TestApp::start(db, bazaar_auth::SigningKey::generate().unwrap(), true).await;
    assert_eq!(all_products(&restarted).await.len(), 1);
}
