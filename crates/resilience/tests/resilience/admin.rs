use std::sync::Arc;

use axum::body::Body;
use bazaar_auth::{Claims, JwkSet, SigningKey, Verifier};
use bazaar_resilience::{admin_routes, BreakerConfig, CircuitBreaker};
use bazaar_runtime::{Health, ServiceStack};
use http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

struct Admin {
    router: axum::Router,
    key: SigningKey,
}

impl Admin {
    fn new() -> Admin {
        bazaar_runtime::telemetry::init_for_tests();
        let key = SigningKey::generate().unwrap();
        let verifier = Arc::new(Verifier::with_keys(JwkSet {
            keys: vec![key.public_jwk()],
        }));
        let router = ServiceStack::new("resilience-test", Health::new())
            .with_verifier(verifier)
            .wrap(admin_routes());
        Admin { router, key }
    }

    fn token(&self, roles: &[&str]) -> String {
        let claims = Claims::new_access(
            "user-1",
            roles.iter().map(|r| (*r).to_owned()).collect(),
            bazaar_auth::unix_now(),
        );
        self.key.sign(&claims).unwrap()
    }

    async fn get(&self, token: Option<String>) -> (StatusCode, Value) {
        let mut req = Request::get("/admin/breakers");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let res = self
            .router
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

#[tokio::test]
async fn admins_see_every_breaker_with_its_state_and_rates() {
    let admin = Admin::new();
    let breaker = CircuitBreaker::new("admin-listed", BreakerConfig::default());
    for _ in 0..10 {
        breaker.try_acquire().unwrap().failure();
    }
    let (status, body) = admin.get(Some(admin.token(&["customer", "admin"]))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let item = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "admin-listed")
        .unwrap_or_else(|| panic!("not listed: {body}"))
        .clone();
    assert_eq!(item["state"], "open");
    assert_eq!(item["failure_rate"], 1.0);
    assert_eq!(item["calls"], 10);
    assert!(item["opened_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn the_breaker_list_is_for_admins_only() {
    let admin = Admin::new();
    let (status, body) = admin.get(None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = admin.get(Some(admin.token(&["customer"]))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.get("items").is_none());
}
