//! The JWKS and key rotation.

use bazaar_auth::{JwkSet, Verifier};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{decode_jwt, problem, TestApp, PASSWORD};

on_both_backends!(
    after_a_rotation_old_tokens_still_work_both_keys_are_published_and_new_tokens_use_the_new_key,
    only_an_admin_may_rotate_the_keys,
);

async fn jwks(app: &TestApp) -> JwkSet {
    let response = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn rotate(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let mut request = app.client.post(app.url("/admin/keys/rotate"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn after_a_rotation_old_tokens_still_work_both_keys_are_published_and_new_tokens_use_the_new_key(
    app: TestApp,
) {
    let (user, old_token) = app.customer().await;
    let email = user["email"].as_str().unwrap().to_owned();
    let old_kid = decode_jwt(&old_token).0["kid"].as_str().unwrap().to_owned();
    let admin = app.admin_token().await;

    let response = rotate(&app, Some(&admin)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let rotation: Value = response.json().await.unwrap();
    let new_kid = rotation["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(rotation["published"], serde_json::json!([new_kid, old_kid]));

    let published = jwks(&app).await;
    let kids: Vec<&str> = published.keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, [new_kid.as_str(), old_kid.as_str()]);

    // Tokens signed before the rotation keep working until they expire.
    assert_eq!(
        app.get("/api/v1/users/me", Some(&old_token)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/users/me", Some(&admin)).await.status(),
        StatusCode::OK
    );

    // New tokens are signed with the new key, and both verify against the served JWKS.
    let new_token = app.token(&email, PASSWORD).await;
    assert_eq!(decode_jwt(&new_token).0["kid"], new_kid.as_str());
    assert_eq!(
        app.get("/api/v1/users/me", Some(&new_token)).await.status(),
        StatusCode::OK
    );
    let verifier = Verifier::with_keys(published);
    assert!(verifier.verify(&old_token).await.is_ok());
    assert!(verifier.verify(&new_token).await.is_ok());

    // A second rotation retires the second key; all three stay published for now.
    let response = rotate(&app, Some(&admin)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(jwks(&app).await.keys.len(), 3);
}

async fn only_an_admin_may_rotate_the_keys(app: TestApp) {
    let (_, customer) = app.customer().await;
    let response = rotate(&app, Some(&customer)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        problem(response).await["type"],
        "urn:bazaar:problem:forbidden"
    );

    let response = rotate(&app, None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");

    // Nothing rotated.
    assert_eq!(jwks(&app).await.keys.len(), 1);
}
