use crate::{
    helpers::{assert_problem, echo_of, TestApp},
    routing::raw_request,
};

#[tokio::test]
async fn a_declared_body_over_the_limit_is_a_413_and_never_reaches_the_upstream() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .post(app.url("/api/v1/small"))
        .body(vec![b'a'; 2048])
        .send()
        .await
        .unwrap();
    assert_problem(res, 413, "payload-too-large").await;
    assert_eq!(app.alpha.completed(), 0);
    // At the limit is fine.
    let echo = echo_of(
        app.client
            .post(app.url("/api/v1/small"))
            .body(vec![b'a'; 1024])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(echo["body_len"], 1024);
}

#[tokio::test]
async fn a_chunked_body_growing_past_the_limit_is_a_413_and_never_reaches_the_upstream() {
    let app = TestApp::spawn().await;
    let chunk = "a".repeat(1000);
    let mut request = String::from(
        "POST /api/v1/small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n",
    );
    for _ in 0..3 {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    let raw = raw_request(&app, &request).await;
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(
        raw.contains("urn:bazaar:problem:payload-too-large"),
        "{raw}"
    );
    assert_eq!(
        app.alpha.completed(),
        0,
        "the upstream must never get the whole body"
    );
}

#[tokio::test]
async fn a_chunked_body_within_the_limit_goes_through() {
    let app = TestApp::spawn().await;
    let request = "POST /api/v1/small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
                   5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let raw = raw_request(&app, request).await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(raw.contains("\"body_len\":11"), "{raw}");
}

#[tokio::test]
async fn a_client_reusing_its_connection_after_an_early_413_is_served() {
    let app = TestApp::spawn().await;
    // Several rounds and a body far past what hyper would drain: the bug this guards against
    // was a race between the gateway closing a connection with unread bytes and the client
    // sending its next request on it.
    for round in 0..5 {
        let res = app
            .client
            .post(app.url("/api/v1/small"))
            .body(vec![b'a'; 256 * 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["connection"], "close", "round {round}");
        assert_problem(res, 413, "payload-too-large").await;
        let res = app
            .client
            .post(app.url("/api/v1/small"))
            .body(vec![b'a'; 16])
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: the next request failed: {e:?}"));
        assert_eq!(echo_of(res).await["body_len"], 16, "round {round}");
    }
    assert_eq!(app.alpha.completed(), 5);
}
