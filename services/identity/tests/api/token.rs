//! `POST /api/v1/auth/token` and the tokens it issues.

use bazaar_auth::{JwkSet, Verifier};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{decode_jwt, pointers, problem, TestApp, PASSWORD};

on_both_backends!(
    a_login_returns_a_bearer_token_that_verifies_with_the_served_jwks,
    the_email_of_a_login_is_matched_in_any_case,
    a_wrong_password_and_an_unknown_email_get_identical_401s,
    a_login_with_missing_fields_is_422_and_malformed_json_is_400,
);

async fn a_login_returns_a_bearer_token_that_verifies_with_the_served_jwks(app: TestApp) {
    let registered: Value = app
        .register("token@example.com", PASSWORD, "Token")
        .await
        .json()
        .await
        .unwrap();
    let response = app.login("token@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let token = body["access_token"].as_str().unwrap();

    let (header, claims) = decode_jwt(token);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(claims["iss"], "bazaar-identity");
    assert_eq!(claims["aud"], "bazaar");
    assert_eq!(claims["sub"], registered["id"]);
    assert_eq!(claims["roles"], json!(["customer"]));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );

    let jwks: JwkSet = app
        .get("/.well-known/jwks.json", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(jwks.keys[0].kid, header["kid"].as_str().unwrap());
    assert_eq!(jwks.keys[0].alg, "EdDSA");
    assert_eq!(jwks.keys[0].crv, "Ed25519");
    let verified = Verifier::with_keys(jwks).verify(token).await.unwrap();
    assert_eq!(verified.sub, registered["id"].as_str().unwrap());
}

async fn the_email_of_a_login_is_matched_in_any_case(app: TestApp) {
    app.register("Case@Example.com", PASSWORD, "Case").await;
    assert_eq!(
        app.login(" CASE@example.COM ", PASSWORD).await.status(),
        StatusCode::OK
    );
}

async fn a_wrong_password_and_an_unknown_email_get_identical_401s(app: TestApp) {
    app.register("known@example.com", PASSWORD, "Known").await;
    let mut bodies = Vec::new();
    for (email, password) in [
        ("known@example.com", "wrong password"),
        ("unknown@example.com", PASSWORD),
        ("unknown@example.com", "wrong password"),
        ("not an email", PASSWORD),
        ("known@example.com", "short"),
    ] {
        let response = app.login(email, password).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{email}");
        // No hint that a token was involved, and the same header for every case.
        assert!(response.headers().get("www-authenticate").is_none());
        let mut body = problem(response).await;
        let map = body.as_object_mut().unwrap();
        assert!(map.remove("trace_id").is_some());
        map.remove("instance");
        bodies.push(body);
    }
    assert_eq!(bodies[0]["type"], "urn:bazaar:problem:unauthorized");
    assert_eq!(bodies[0]["detail"], "The email or password is wrong.");
    for body in &bodies[1..] {
        assert_eq!(body, &bodies[0]);
    }
}

async fn a_login_with_missing_fields_is_422_and_malformed_json_is_400(app: TestApp) {
    let response = app.post_json("/api/v1/auth/token", &json!({})).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(pointers(&problem(response).await), ["/email", "/password"]);

    let response = app
        .post_json("/api/v1/auth/token", &json!({"email": "a@example.com"}))
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(pointers(&problem(response).await), ["/password"]);

    let response = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .header("content-type", "application/json")
        .body("{\"email\":")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let response = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .form(&[("email", "a@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}
