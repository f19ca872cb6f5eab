//! `GET /api/v1/users/me` and how the service treats tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bazaar_auth::{Claims, SigningKey};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{decode_jwt, problem, TestApp};

on_both_backends!(
    the_profile_of_the_token_holder_is_returned,
    without_a_token_the_answer_is_401_with_a_bearer_challenge,
    a_forged_identity_header_without_a_token_is_refused,
    tampered_expired_and_forged_tokens_are_refused_as_invalid,
    a_token_whose_user_no_longer_exists_gets_a_404,
    readiness_checks_the_database,
    a_user_is_visible_to_its_owner_and_admins_only,
);

async fn a_user_is_visible_to_its_owner_and_admins_only(app: TestApp) {
    let (alice, alice_token) = app.customer().await;
    let (_, bob_token) = app.customer().await;
    let path = format!("/api/v1/users/{}", alice["id"].as_str().unwrap());
    let response = app.get(&path, Some(&alice_token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), alice);
    let admin = app.admin_token().await;
    assert_eq!(app.get(&path, Some(&admin)).await.status(), StatusCode::OK);
    // Someone else's account looks exactly like an unknown one.
    let response = app.get(&path, Some(&bob_token)).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = app
        .get("/api/v1/users/not-a-uuid", Some(&alice_token))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&path, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn the_profile_of_the_token_holder_is_returned(app: TestApp) {
    let (user, token) = app.customer().await;
    let response = app.get("/api/v1/users/me", Some(&token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me, user);
}

async fn without_a_token_the_answer_is_401_with_a_bearer_challenge(app: TestApp) {
    let response = app.get("/api/v1/users/me", None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        problem(response).await["type"],
        "urn:bazaar:problem:unauthorized"
    );
}

async fn a_forged_identity_header_without_a_token_is_refused(app: TestApp) {
    let (user, _) = app.customer().await;
    let id = user["id"].as_str().unwrap();
    for header in [
        "x-user-id",
        "x-bazaar-user-id",
        "x-user-roles",
        "x-forwarded-user",
    ] {
        let response = app
            .client
            .get(app.url("/api/v1/users/me"))
            .header(header, id)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn tampered_expired_and_forged_tokens_are_refused_as_invalid(app: TestApp) {
    let (user, token) = app.customer().await;
    let id = user["id"].as_str().unwrap();
    let (_, claims) = decode_jwt(&token);
    let parts: Vec<&str> = token.split('.').collect();

    // Same signature, claims changed to make the caller an admin.
    let mut admin = claims.clone();
    admin["roles"] = serde_json::json!(["customer", "admin"]);
    let tampered = format!("{}.{}.{}", parts[0], b64(admin.to_string()), parts[2]);

    // Correctly signed by identity's own key, but expired.
    let key = app.signing_key().await;
    let now = bazaar_auth::unix_now();
    let mut old = Claims::new_access(id, vec!["customer".into()], now - 2 * 3600);
    old.exp = now - 600;
    let expired = key.sign(&old).unwrap();

    // Signed by a stranger's key, under a new kid and under identity's own kid.
    let fresh = Claims::new_access(id, vec!["customer".into(), "admin".into()], now);
    let stranger = SigningKey::generate().unwrap().sign(&fresh).unwrap();
    let impostor = SigningKey::from_pkcs8(
        key.kid().to_owned(),
        SigningKey::generate().unwrap().pkcs8_der(),
    )
    .unwrap()
    .sign(&fresh)
    .unwrap();

    // No signature at all.
    let unsigned = format!(
        "{}.{}.",
        b64(format!(r#"{{"alg":"none","kid":"{}"}}"#, key.kid())),
        b64(fresh_json(&fresh))
    );

    for (what, bad) in [
        ("tampered", tampered),
        ("expired", expired),
        ("stranger", stranger),
        ("impostor", impostor),
        ("unsigned", unsigned),
        ("garbage", "not.a.token".to_owned()),
    ] {
        let response = app.get("/api/v1/users/me", Some(&bad)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\"",
            "{what}"
        );
        // Refused on public routes too: a bad token is never silently ignored.
        let response = app.get("/.well-known/jwks.json", Some(&bad)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
    }
    // The real token still works.
    assert_eq!(
        app.get("/api/v1/users/me", Some(&token)).await.status(),
        StatusCode::OK
    );
}

fn fresh_json(claims: &Claims) -> String {
    serde_json::to_string(claims).unwrap()
}

async fn a_token_whose_user_no_longer_exists_gets_a_404(app: TestApp) {
    let (user, token) = app.customer().await;
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(user["id"].as_str().unwrap())
        .execute(app.db().await.writer())
        .await
        .unwrap();
    let response = app.get("/api/v1/users/me", Some(&token)).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        problem(response).await["type"],
        "urn:bazaar:problem:not-found"
    );
}

async fn readiness_checks_the_database(app: TestApp) {
    let response = app.get("/readyz", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["checks"]["db"], "ok");
}
