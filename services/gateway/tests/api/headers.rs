use crate::helpers::{echo_of, TestApp};

#[tokio::test]
async fn internal_headers_are_stripped_and_forwarding_headers_added() {
    let app = TestApp::spawn().await;
    let token = app.customer("u1");
    let res = app
        .get("/api/v1/things/1")
        .bearer_auth(&token)
        .header("x-user-id", "admin")
        .header("x-user-roles", "admin")
        .header("x-roles", "admin")
        .header("x-forwarded-user", "admin")
        .header("x-bazaar-caller", "order")
        .header("x-internal-secret", "s3cret")
        .header("x-forwarded-for", "6.6.6.6")
        .header("forwarded", "for=6.6.6.6")
        .header("x-real-ip", "6.6.6.6")
        .header("x-custom", "kept")
        .send()
        .await
        .unwrap();
    let response_request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let echo = echo_of(res).await;
    let h = echo["headers"].as_object().unwrap();
    for gone in [
        "x-user-id",
        "x-user-roles",
        "x-roles",
        "x-forwarded-user",
        "x-bazaar-caller",
        "x-internal-secret",
        "forwarded",
        "x-real-ip",
    ] {
        assert!(!h.contains_key(gone), "{gone} reached the upstream");
    }
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-custom"], "kept");
    assert_eq!(h["authorization"], format!("Bearer {token}"));
    assert_eq!(h["x-request-id"], response_request_id.as_str());
    assert!(h.contains_key("traceparent"));
}

#[tokio::test]
async fn the_upstream_joins_the_clients_trace_under_the_gateways_span() {
    let app = TestApp::spawn().await;
    let client_parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let res = app
        .get("/api/v1/things")
        .header("traceparent", client_parent)
        .send()
        .await
        .unwrap();
    let response_tp = res.headers()["traceparent"].to_str().unwrap().to_owned();
    let echo = echo_of(res).await;
    let upstream_tp = echo["headers"]["traceparent"].as_str().unwrap();
    let parts: Vec<&str> = upstream_tp.split('-').collect();
    assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736", "same trace");
    assert_ne!(
        parts[2], "00f067aa0ba902b7",
        "the gateway's span is the parent, not the client's"
    );
    assert_eq!(
        upstream_tp, response_tp,
        "the gateway reports its own span to the client"
    );
}

#[tokio::test]
async fn a_valid_request_id_is_kept_and_an_invalid_one_replaced() {
    let app = TestApp::spawn().await;
    let res = app
        .get("/api/v1/things")
        .header("x-request-id", "abc.DEF_1-2")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc.DEF_1-2");
    assert_eq!(echo_of(res).await["headers"]["x-request-id"], "abc.DEF_1-2");

    let res = app
        .get("/api/v1/things")
        .header("x-request-id", "not valid!")
        .send()
        .await
        .unwrap();
    let replaced = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(replaced, "not valid!");
    assert!(!replaced.is_empty());
    assert_eq!(
        echo_of(res).await["headers"]["x-request-id"],
        replaced.as_str()
    );
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_traceparent() {
    let app = TestApp::spawn().await;
    for path in ["/api/v1/things", "/nowhere", "/api/v1/ghost", "/docs"] {
        let res = app.get(path).send().await.unwrap();
        assert!(res.headers().contains_key("x-request-id"), "{path}");
        assert!(res.headers().contains_key("traceparent"), "{path}");
    }
}
