use crate::helpers::{assert_problem, echo_of, TestApp, BIG_CHUNK, BIG_CHUNKS};

#[tokio::test]
async fn forwards_the_path_and_query_to_the_routes_service() {
    let app = TestApp::spawn().await;
    let echo = echo_of(
        app.get("/api/v1/things/42?color=red&size=%20L")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(echo["served_by"], "alpha");
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/api/v1/things/42");
    assert_eq!(echo["query"], "color=red&size=%20L");
}

#[tokio::test]
async fn the_longest_matching_prefix_wins_on_whole_segments() {
    let app = TestApp::spawn().await;
    let special = echo_of(app.get("/api/v1/things/special/1").send().await.unwrap()).await;
    assert_eq!(special["served_by"], "beta");
    let plain = echo_of(app.get("/api/v1/things/specialist").send().await.unwrap()).await;
    assert_eq!(plain["served_by"], "alpha");
    assert_eq!((app.alpha.completed(), app.beta.completed()), (1, 1));
    let res = app.get("/api/v1/thingsx").send().await.unwrap();
    assert_problem(res, 404, "not-found").await;
}

#[tokio::test]
async fn a_rewrite_replaces_the_prefix() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let res = app
        .get("/api/v1/admin/things/7/retry?x=1")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let echo = echo_of(res).await;
    assert_eq!(echo["path"], "/admin/things/7/retry");
    assert_eq!(echo["query"], "x=1");
}

#[tokio::test]
async fn an_unknown_path_is_a_404_problem() {
    let app = TestApp::spawn().await;
    let body = assert_problem(app.get("/nowhere").send().await.unwrap(), 404, "not-found").await;
    assert_eq!(body["instance"], "/nowhere");
    assert_problem(app.get("/").send().await.unwrap(), 404, "not-found").await;
}

#[tokio::test]
async fn a_method_outside_the_allow_list_is_a_405_problem() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .post(app.url("/api/v1/get-only"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "GET");
    assert_problem(res, 405, "method-not-allowed").await;
    echo_of(app.get("/api/v1/get-only").send().await.unwrap()).await;
}

#[tokio::test]
async fn dot_segments_are_refused() {
    let app = TestApp::spawn().await;
    // Sent raw: an HTTP client would normalise the path before sending it.
    let raw = raw_request(
        &app,
        "GET /api/v1/things/%2e%2e/admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 400"), "{raw}");
    assert_eq!(app.alpha.completed(), 0);
}

#[tokio::test]
async fn request_and_response_bodies_stream_through() {
    let app = TestApp::spawn().await;
    let res = app.get("/api/v1/big").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.bytes().await.unwrap();
    assert_eq!(body.len(), BIG_CHUNKS * BIG_CHUNK);
    assert!(body.iter().all(|b| *b == b'x'));

    let upload = vec![b'u'; 60_000];
    let echo = echo_of(
        app.client
            .put(app.url("/api/v1/things/1"))
            .body(upload)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["body_len"], 60_000);
}

#[tokio::test]
async fn problems_from_upstreams_pass_through() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .post(app.url("/api/v1/json"))
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_problem(res, 415, "unsupported-media-type").await;
    let res = app.get("/api/v1/fail").send().await.unwrap();
    let body = assert_problem(res, 500, "internal").await;
    assert_eq!(body["detail"], "boom");
}

pub async fn raw_request(app: &TestApp, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn upstream_outcomes_are_counted_in_metrics() {
    let app = TestApp::spawn().await;
    echo_of(app.get("/api/v1/things").send().await.unwrap()).await;
    let _ = app.get("/api/v1/ghost").send().await.unwrap();
    let _ = app.get("/api/v1/cached/m").send().await.unwrap();
    let metrics = app
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"bazaar_gateway_upstream_requests_total{service="alpha",status="200"}"#,
        r#"bazaar_gateway_upstream_requests_total{service="ghost",status="unavailable"}"#,
        r#"bazaar_gateway_upstream_duration_seconds_bucket{service="alpha""#,
        r#"bazaar_gateway_cache_total{result="miss"}"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in:\n{metrics}");
    }
}
