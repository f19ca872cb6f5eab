//! A restart on the same database keeps accounts and keys.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{decode_jwt, TestApp, PASSWORD};

on_both_backends!(a_restart_keeps_users_and_signing_keys,);

async fn a_restart_keeps_users_and_signing_keys(app: TestApp) {
    let (user, token) = app.customer().await;
    let email = user["email"].as_str().unwrap().to_owned();
    let kid = decode_jwt(&token).0["kid"].as_str().unwrap().to_owned();
    let admin_id = {
        let admin = app.admin_token().await;
        decode_jwt(&admin).1["sub"].as_str().unwrap().to_owned()
    };

    let app = app.restart().await;

    // The token issued before the restart still verifies: the key came back from the database.
    let response = app.get("/api/v1/users/me", Some(&token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me, user);

    let again = app.token(&email, PASSWORD).await;
    assert_eq!(decode_jwt(&again).0["kid"], kid.as_str());
    let jwks: Value = app
        .get("/.well-known/jwks.json", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);

    // The admin was not bootstrapped a second time.
    let admin = app.admin_token().await;
    assert_eq!(decode_jwt(&admin).1["sub"], admin_id.as_str());
}
