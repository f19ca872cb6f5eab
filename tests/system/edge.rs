//! The gateway's edge behaviour that only a real stack shows.

use serde_json::Value;

use crate::support::{assert_problem, Shop};

#[tokio::test]
async fn the_edge_answers_every_error_as_a_problem_and_traces_every_request() {
    // The default route table plus a route to a service that has no instance.
    let routes_dir = tempfile::tempdir().unwrap();
    let routes = routes_dir.path().join("routes.toml");
    let mut table = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/services/gateway/routes.example.toml"
    ))
    .unwrap();
    table.push_str(
        "\n[[route]]\nprefix = \"/api/v1/legacy\"\nservice = \"legacy\"\nauth = \"required\"\n",
    );
    std::fs::write(&routes, table).unwrap();
    let shop = Shop::start_with(crate::support::Options {
        env: vec![("BAZAAR_GATEWAY_ROUTES".into(), routes.display().to_string())],
        ..Default::default()
    })
    .await;
    let c = &shop.client;

    // Unknown route: 404 problem.
    let res = c
        .get(shop.url("/api/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not-found").await;

    // Wrong method on a known resource: 405 problem.
    let res = c.delete(shop.url("/api/v1/products")).send().await.unwrap();
    assert_problem(res, 405, "method-not-allowed").await;

    // Headers over 16 KiB: 431 from the HTTP layer.
    let res = c
        .get(shop.url("/api/v1/products"))
        .header("x-big", "a".repeat(17 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 431);

    // A route whose service has no instance: 503 + Retry-After.
    let (_, token, _) = shop.customer().await;
    let res = c
        .get(shop.url("/api/v1/legacy"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 503, "upstream-unavailable").await;

    // X-Request-Id: kept when acceptable, replaced otherwise; traceparent continues the caller's trace.
    let res = c
        .get(shop.url("/api/v1/products"))
        .header("x-request-id", "client-req.42")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "client-req.42");
    let tp = res.headers()["traceparent"].to_str().unwrap();
    assert!(
        tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{tp}"
    );
    let res = c
        .get(shop.url("/api/v1/products"))
        .header("x-request-id", "has spaces!")
        .send()
        .await
        .unwrap();
    let rid = res.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(rid, "has spaces!");
    assert!(!rid.is_empty());

    // One merged OpenAPI document and a browsable page.
    let doc: Value = c
        .get(shop.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/api/v1/users",
        "/api/v1/auth/token",
        "/api/v1/users/me",
        "/api/v1/products",
        "/api/v1/products/{id}",
    ] {
        assert!(doc["paths"].get(path).is_some(), "openapi lacks {path}");
    }
    let res = c.get(shop.url("/docs")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = res.text().await.unwrap();
    assert!(
        !html.contains("https://"),
        "the docs page loads nothing from a CDN"
    );
}
