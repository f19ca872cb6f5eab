//! Two identity instances sharing one database, as replicas on PostgreSQL do.

use reqwest::StatusCode;
use sqlx::Row as _;

use crate::helpers::{decode_jwt, Location, TestApp, PASSWORD};

on_both_databases!(
    replicas_starting_together_create_one_admin_and_one_signing_key,
    a_rotation_on_one_replica_is_honoured_by_the_other,
);

async fn replicas_starting_together_create_one_admin_and_one_signing_key(location: Location) {
    let (a, b) = tokio::join!(TestApp::at(&location), TestApp::at(&location));
    let db = a.db().await;
    let admins: i64 = sqlx::query("SELECT COUNT(*) FROM users WHERE email = 'admin@bazaar.local'")
        .fetch_one(db.reader())
        .await
        .unwrap()
        .get(0);
    assert_eq!(admins, 1);
    let current: i64 = sqlx::query("SELECT COUNT(*) FROM signing_keys WHERE retired_at IS NULL")
        .fetch_one(db.reader())
        .await
        .unwrap()
        .get(0);
    assert_eq!(current, 1);

    // Either replica can log the admin in and verify the other's tokens.
    let from_a = a.admin_token().await;
    let from_b = b.admin_token().await;
    assert_eq!(
        b.get("/api/v1/users/me", Some(&from_a)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        a.get("/api/v1/users/me", Some(&from_b)).await.status(),
        StatusCode::OK
    );
}

async fn a_rotation_on_one_replica_is_honoured_by_the_other(location: Location) {
    let a = TestApp::at(&location).await;
    let b = TestApp::at(&location).await;
    let (user, _) = a.customer().await;
    let email = user["email"].as_str().unwrap().to_owned();

    let admin = a.admin_token().await;
    let response = a
        .client
        .post(a.url("/admin/keys/rotate"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let rotation: serde_json::Value = response.json().await.unwrap();
    let new_kid = rotation["kid"].as_str().unwrap();

    // B accepts A's new tokens, learning the new key from the shared database…
    let from_a = a.token(&email, PASSWORD).await;
    assert_eq!(decode_jwt(&from_a).0["kid"], new_kid);
    assert_eq!(
        b.get("/api/v1/users/me", Some(&from_a)).await.status(),
        StatusCode::OK
    );
    // …and signs with the new key itself instead of its cached, now retired one.
    let from_b = b.token(&email, PASSWORD).await;
    assert_eq!(decode_jwt(&from_b).0["kid"], new_kid);
    assert_eq!(
        a.get("/api/v1/users/me", Some(&from_b)).await.status(),
        StatusCode::OK
    );
}
