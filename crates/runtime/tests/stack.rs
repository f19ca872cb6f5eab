#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The standard stack, over a real socket.

use std::sync::Arc;

use axum::{routing::get, Router};
use bazaar_auth::{Claims, JwkSet, SigningKey, Verifier};
use bazaar_runtime::{AdminUser, App, AuthUser, Health, Json, ServiceStack};
use serde_json::Value;

async fn start() -> (String, SigningKey) {
    bazaar_runtime::telemetry::init_for_tests();
    let key = SigningKey::generate().unwrap();
    let verifier = Arc::new(Verifier::with_keys(JwkSet {
        keys: vec![key.public_jwk()],
    }));
    #[derive(serde::Deserialize)]
    struct Body {
        #[allow(dead_code)]
        n: u32,
    }
    let routes = Router::new()
        .route("/public", get(|| async { "ok" }))
        .route("/me", get(|AuthUser(c): AuthUser| async move { c.sub }))
        .route("/admin", get(|AdminUser(_): AdminUser| async { "admin" }))
        .route(
            "/panic",
            get(|| async {
                if std::hint::black_box(true) {
                    panic!("boom: secret internals");
                }
                "unreachable"
            }),
        )
        .route(
            "/echo",
            axum::routing::post(|Json(_b): Json<Body>| async { "ok" }),
        );
    let health = Health::new();
    let router = ServiceStack::new("test", health.clone())
        .with_verifier(verifier)
        .wrap(routes);
    let app = App::bind("127.0.0.1:0".parse().unwrap(), router)
        .await
        .unwrap()
        .with_health(health);
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    (url, key)
}

fn token(key: &SigningKey, roles: &[&str]) -> String {
    key.sign(&Claims::new_access(
        "user-1",
        roles.iter().map(|r| (*r).to_owned()).collect(),
        bazaar_auth::unix_now(),
    ))
    .unwrap()
}

async fn problem(res: reqwest::Response, status: u16, slug: &str) -> Value {
    assert_eq!(res.status(), status);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], format!("urn:bazaar:problem:{slug}"));
    assert_eq!(body["trace_id"].as_str().unwrap().len(), 32);
    body
}

#[tokio::test]
async fn errors_are_problems_with_instance_and_trace_id() {
    let (url, _) = start().await;
    let c = reqwest::Client::new();
    let body = problem(
        c.get(format!("{url}/nope")).send().await.unwrap(),
        404,
        "not-found",
    )
    .await;
    assert_eq!(body["instance"], "/nope");
    problem(
        c.delete(format!("{url}/public")).send().await.unwrap(),
        405,
        "method-not-allowed",
    )
    .await;
    let body = problem(
        c.get(format!("{url}/panic")).send().await.unwrap(),
        500,
        "internal",
    )
    .await;
    assert!(!body.to_string().contains("secret internals"));
    problem(
        c.post(format!("{url}/echo"))
            .header("content-type", "application/json")
            .body("{")
            .send()
            .await
            .unwrap(),
        400,
        "malformed-request",
    )
    .await;
    let body = problem(
        c.post(format!("{url}/echo"))
            .header("content-type", "application/json")
            .body(r#"{"n":-1}"#)
            .send()
            .await
            .unwrap(),
        422,
        "validation",
    )
    .await;
    assert_eq!(body["errors"][0]["pointer"], "/n");
    problem(
        c.post(format!("{url}/echo"))
            .body(r#"{"n":1}"#)
            .send()
            .await
            .unwrap(),
        415,
        "unsupported-media-type",
    )
    .await;
    let big = format!(r#"{{"n":1,"pad":"{}"}}"#, "x".repeat(70 * 1024));
    problem(
        c.post(format!("{url}/echo"))
            .header("content-type", "application/json")
            .body(big)
            .send()
            .await
            .unwrap(),
        413,
        "payload-too-large",
    )
    .await;
}

#[tokio::test]
async fn tokens_are_verified_on_every_route() {
    let (url, key) = start().await;
    let c = reqwest::Client::new();
    let res = c.get(format!("{url}/me")).send().await.unwrap();
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    problem(res, 401, "unauthorized").await;
    // An invalid token is refused even on a public route.
    let res = c
        .get(format!("{url}/public"))
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    problem(res, 401, "unauthorized").await;
    let other = SigningKey::generate().unwrap();
    problem(
        c.get(format!("{url}/me"))
            .bearer_auth(token(&other, &["customer"]))
            .send()
            .await
            .unwrap(),
        401,
        "unauthorized",
    )
    .await;
    let res = c
        .get(format!("{url}/me"))
        .bearer_auth(token(&key, &["customer"]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "user-1");
    problem(
        c.get(format!("{url}/admin"))
            .bearer_auth(token(&key, &["customer"]))
            .send()
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    let res = c
        .get(format!("{url}/admin"))
        .bearer_auth(token(&key, &["customer", "admin"]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn health_metrics_request_ids_and_header_limits() {
    let (url, _) = start().await;
    let c = reqwest::Client::new();
    assert_eq!(
        c.get(format!("{url}/livez")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        c.get(format!("{url}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let res = c
        .get(format!("{url}/public"))
        .header("x-request-id", "abc-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-1");
    assert!(res.headers().contains_key("traceparent"));
    let metrics = c
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("bazaar_http_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"/public\""));
    let res = c
        .get(format!("{url}/public"))
        .header("x-big", "a".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 431);
}

#[tokio::test]
async fn readiness_fails_while_draining_and_when_a_check_fails() {
    let health = Health::new();
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let f = flag.clone();
    health.add_check("db", move || {
        let ok = f.load(std::sync::atomic::Ordering::SeqCst);
        async move {
            if ok {
                Ok(())
            } else {
                Err("down".to_owned())
            }
        }
    });
    assert!(health.check().await.0);
    flag.store(false, std::sync::atomic::Ordering::SeqCst);
    let (ready, checks) = health.check().await;
    assert!(!ready);
    assert_eq!(checks["db"], "down");
    flag.store(true, std::sync::atomic::Ordering::SeqCst);
    health.start_draining();
    assert!(!health.check().await.0);
}
