use serde_json::Value;

use crate::helpers::TestApp;

#[tokio::test]
async fn openapi_json_is_one_document_with_every_services_paths() {
    let app = TestApp::spawn().await;
    let res = app.get("/api/v1/openapi.json").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(doc["info"]["title"], "Bazaar");
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/users",
        "/api/v1/auth/token",
        "/api/v1/products",
        "/api/v1/inventory/{sku}",
        "/api/v1/admin/payments",
        "/api/v1/admin/shipments",
        "/api/v1/me/notifications",
        "/api/v1/openapi.json",
        "/docs",
        "/api/v1/me/overview",
        "/api/v1/admin/dead-letters",
        "/api/v1/admin/dead-letters/{service}/{id}/redrive",
        "/api/v1/admin/breakers",
    ] {
        assert!(paths.contains_key(p), "missing {p}");
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

#[tokio::test]
async fn docs_is_a_self_contained_html_page() {
    let app = TestApp::spawn().await;
    let res = app.get("/docs").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let html = res.text().await.unwrap();
    assert!(html.contains("<html"));
    assert!(html.contains("/docs/docs.js"));
    assert!(!html.contains("https://"), "no external resources");

    let js = app.get("/docs/docs.js").send().await.unwrap();
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let js = js.text().await.unwrap();
    assert!(js.contains("/api/v1/openapi.json"));
    assert!(!js.contains("innerHTML"));
    let css = app.get("/docs/docs.css").send().await.unwrap();
    assert!(css.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
}
