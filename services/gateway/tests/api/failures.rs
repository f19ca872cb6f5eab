use crate::helpers::{assert_problem, echo_of, TestApp};

#[tokio::test]
async fn a_service_without_instances_is_a_503_with_retry_after() {
    let app = TestApp::spawn().await;
    let res = app.get("/api/v1/ghost").send().await.unwrap();
    assert_eq!(res.headers()["retry-after"], "1");
    assert_problem(res, 503, "upstream-unavailable").await;
}

#[tokio::test]
async fn a_dead_instance_is_skipped_for_a_live_one() {
    let app = TestApp::spawn().await;
    for _ in 0..10 {
        let res = app
            .client
            .post(app.url("/api/v1/mixed/x"))
            .body("payload")
            .send()
            .await
            .unwrap();
        let echo = echo_of(res).await;
        // The body survives the failed connect and reaches the live instance whole.
        assert_eq!(echo["body_len"], 7);
    }
    assert_eq!(app.alpha.completed(), 10);
}

#[tokio::test]
async fn when_every_instance_refuses_the_answer_is_a_502() {
    let app = TestApp::spawn().await;
    let body = assert_problem(
        app.get("/api/v1/dead").send().await.unwrap(),
        502,
        "upstream-unavailable",
    )
    .await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        !detail.contains("127.0.0.1"),
        "no internal addresses in problems: {detail}"
    );
}

#[tokio::test]
async fn a_slow_upstream_past_the_route_timeout_is_a_504_problem() {
    let app = TestApp::spawn().await;
    let res = app.get("/api/v1/slow").send().await.unwrap();
    assert!(res.headers().contains_key("traceparent"));
    assert_problem(res, 504, "upstream-timeout").await;
}
