//! API.md's Identity section through the gateway, on SQLite and PostgreSQL.

use serde_json::{json, Value};

use crate::support::{assert_problem, pointers, Shop};

async fn identity_contract(shop: &Shop) {
    let c = &shop.client;
    let email = format!("Mixed.Case{}@Example.COM", uuid::Uuid::new_v4().simple());

    // 201, email lower-cased, Location.
    let res = c
        .post(shop.url("/api/v1/users"))
        .json(&json!({"email": email, "password": "s3cret-enough", "display_name": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let user: Value = res.json().await.unwrap();
    assert_eq!(user["email"], email.to_lowercase());
    assert_eq!(
        location,
        format!("/api/v1/users/{}", user["id"].as_str().unwrap())
    );
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());

    // 409 duplicate email (any case).
    let res = c
        .post(shop.url("/api/v1/users"))
        .json(&json!({"email": email.to_uppercase(), "password": "s3cret-enough", "display_name": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 409, "conflict").await;

    // 422 with every pointer at once.
    let res = c
        .post(shop.url("/api/v1/users"))
        .json(&json!({"email": "not-an-email", "password": "short", "display_name": ""}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(res, 422, "validation").await;
    assert_eq!(pointers(&body), ["/display_name", "/email", "/password"]);

    // 400 malformed JSON, 415 wrong content type, 413 too large.
    let res = c
        .post(shop.url("/api/v1/users"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, "malformed-request").await;
    let res = c
        .post(shop.url("/api/v1/users"))
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_problem(res, 415, "unsupported-media-type").await;
    let big =
        json!({"email": "big@example.com", "password": "x".repeat(70_000), "display_name": "B"});
    let res = c
        .post(shop.url("/api/v1/users"))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_problem(res, 413, "payload-too-large").await;

    // Token: 200; wrong password and unknown email answer the same.
    let res = c
        .post(shop.url("/api/v1/auth/token"))
        .json(&json!({"email": email, "password": "s3cret-enough"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let tok: Value = res.json().await.unwrap();
    assert_eq!(tok["token_type"], "Bearer");
    assert_eq!(tok["expires_in"], 900);
    let token = tok["access_token"].as_str().unwrap().to_owned();

    let wrong = c
        .post(shop.url("/api/v1/auth/token"))
        .json(&json!({"email": email, "password": "not-the-password"}))
        .send()
        .await
        .unwrap();
    let wrong = assert_problem(wrong, 401, "unauthorized").await;
    let unknown = c
        .post(shop.url("/api/v1/auth/token"))
        .json(&json!({"email": "nobody-here@example.com", "password": "not-the-password"}))
        .send()
        .await
        .unwrap();
    let unknown = assert_problem(unknown, 401, "unauthorized").await;
    for field in ["type", "title", "status", "detail"] {
        assert_eq!(
            wrong[field], unknown[field],
            "{field} differs between wrong password and unknown email"
        );
    }

    // /users/me: 200 with the token, 401 without, 401 invalid_token with a bad one.
    let res = c
        .get(shop.url("/api/v1/users/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["id"], user["id"]);
    let res = c.get(shop.url("/api/v1/users/me")).send().await.unwrap();
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    assert_problem(res, 401, "unauthorized").await;
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    let res = c
        .get(shop.url("/api/v1/users/me"))
        .bearer_auth(&tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    assert_problem(res, 401, "unauthorized").await;

    // JWKS: EdDSA public keys only.
    let jwks: Value = c
        .get(shop.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert!(!keys.is_empty());
    assert!(keys
        .iter()
        .all(|k| k["alg"] == "EdDSA" && k["crv"] == "Ed25519" && k.get("d").is_none()));

    // The bootstrapped admin can log in and carries the admin role.
    let admin = shop.admin_token().await;
    let me: Value = c
        .get(shop.url("/api/v1/users/me"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "admin@bazaar.local");
}

#[tokio::test]
async fn identity_serves_its_contract_through_the_gateway_on_sqlite() {
    let shop = Shop::start().await;
    identity_contract(&shop).await;
}

#[tokio::test]
async fn identity_serves_its_contract_through_the_gateway_on_postgres() {
    let Some(shop) = Shop::on_postgres().await else {
        return;
    };
    identity_contract(&shop).await;
}

#[tokio::test]
async fn services_refuse_forged_identity_sent_to_their_own_port() {
    let shop = Shop::start().await;
    let c = &shop.client;
    for service in ["identity", "catalog"] {
        let addr = shop.process(service)["addr"].as_str().unwrap().to_owned();
        let (path, method) = if service == "identity" {
            ("/api/v1/users/me", reqwest::Method::GET)
        } else {
            ("/api/v1/products", reqwest::Method::POST)
        };
        // No token, only headers a naive service might trust.
        let res = c
            .request(method.clone(), format!("http://{addr}{path}"))
            .header("x-user-id", "00000000-0000-7000-8000-000000000000")
            .header("x-user-roles", "admin")
            .header("x-bazaar-user", "admin")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_problem(res, 401, "unauthorized").await;
        // A forged token: alg none with admin claims.
        let b64 = |v: Value| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let now = bazaar_runtime::time::now_unix();
        let forged = format!(
            "{}.{}.",
            b64(json!({"alg": "none", "typ": "JWT"})),
            b64(
                json!({"sub": "x", "iss": "bazaar-identity", "aud": "bazaar", "exp": now + 600, "nbf": now, "iat": now, "jti": "j", "roles": ["customer", "admin"]})
            )
        );
        let res = c
            .request(method, format!("http://{addr}{path}"))
            .bearer_auth(&forged)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_problem(res, 401, "unauthorized").await;
    }
}
