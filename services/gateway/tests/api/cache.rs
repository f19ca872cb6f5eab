use crate::helpers::{echo_of, TestApp};

#[tokio::test]
async fn a_second_anonymous_get_is_served_from_the_cache() {
    let app = TestApp::spawn().await;
    let first = app.get("/api/v1/cached/list?page=1").send().await.unwrap();
    assert_eq!(first.headers()["x-cache"], "MISS");
    let first_body = first.text().await.unwrap();

    let second = app.get("/api/v1/cached/list?page=1").send().await.unwrap();
    assert_eq!(second.status(), 200);
    assert_eq!(second.headers()["x-cache"], "HIT");
    let age: u64 = second.headers()["age"].to_str().unwrap().parse().unwrap();
    assert!(age < 60);
    assert_eq!(second.headers()["content-type"], "application/json");
    assert!(second.headers().contains_key("x-request-id"));
    assert_eq!(second.text().await.unwrap(), first_body);
    assert_eq!(app.alpha.completed(), 1);

    // Another query is another entry.
    let other = app.get("/api/v1/cached/list?page=2").send().await.unwrap();
    assert_eq!(other.headers()["x-cache"], "MISS");

    // HEAD is answered from the GET entry.
    let head = app
        .client
        .head(app.url("/api/v1/cached/list?page=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.headers()["x-cache"], "HIT");
    assert_eq!(app.alpha.completed(), 2);
}

#[tokio::test]
async fn an_authenticated_get_is_never_cached() {
    let app = TestApp::spawn().await;
    let token = app.customer("u1");
    for n in 1..=2 {
        let res = app
            .get("/api/v1/cached/me")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert!(res.headers().get("x-cache").is_none());
        assert_eq!(echo_of(res).await["request_number"], n);
    }
    // And what a user got was not stored for anyone else.
    let anon = app.get("/api/v1/cached/me").send().await.unwrap();
    assert_eq!(anon.headers()["x-cache"], "MISS");
    assert_eq!(app.alpha.completed(), 3);
}

#[tokio::test]
async fn routes_without_a_ttl_and_non_get_requests_are_not_cached() {
    let app = TestApp::spawn().await;
    for _ in 0..2 {
        let res = app.get("/api/v1/things/1").send().await.unwrap();
        assert!(res.headers().get("x-cache").is_none());
    }
    for _ in 0..2 {
        let res = app
            .client
            .post(app.url("/api/v1/cached/x"))
            .send()
            .await
            .unwrap();
        assert!(res.headers().get("x-cache").is_none());
    }
    assert_eq!(app.alpha.completed(), 4);
}
