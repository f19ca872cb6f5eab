use bazaar_gateway::{Rate, RateLimits};

use crate::helpers::{assert_problem, echo_of, TestApp};

/// Slow refill, so nothing comes back during a test: only the burst counts.
fn tight() -> RateLimits {
    RateLimits {
        user: Rate {
            per_second: 0.01,
            burst: 3,
        },
        anon: Rate {
            per_second: 0.01,
            burst: 2,
        },
    }
}

fn header(res: &reqwest::Response, name: &str) -> u64 {
    res.headers()[name].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_user_past_the_burst_gets_429_while_another_user_is_unaffected() {
    let app = TestApp::spawn_with(tight()).await;
    let alice = app.customer("alice");
    for expected_remaining in [2, 1, 0] {
        let res = app
            .get("/api/v1/things")
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "ratelimit-limit"), 3);
        assert_eq!(header(&res, "ratelimit-remaining"), expected_remaining);
        assert!(res.headers().contains_key("ratelimit-reset"));
    }
    let res = app
        .get("/api/v1/things")
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert!(header(&res, "retry-after") >= 1);
    assert_eq!(header(&res, "ratelimit-limit"), 3);
    assert_eq!(header(&res, "ratelimit-remaining"), 0);
    assert!(header(&res, "ratelimit-reset") >= 1);
    assert_problem(res, 429, "rate-limited").await;
    assert_eq!(app.alpha.completed(), 3);

    let bob = app.customer("bob");
    let res = app
        .get("/api/v1/things")
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "ratelimit-remaining"), 2);
    echo_of(res).await;
}

#[tokio::test]
async fn anonymous_callers_are_limited_per_ip_separately_from_users() {
    let app = TestApp::spawn_with(tight()).await;
    for _ in 0..2 {
        echo_of(app.get("/api/v1/things").send().await.unwrap()).await;
    }
    let res = app.get("/api/v1/things").send().await.unwrap();
    assert!(header(&res, "retry-after") >= 1);
    assert_eq!(header(&res, "ratelimit-limit"), 2);
    assert_problem(res, 429, "rate-limited").await;
    // The same IP with a token draws from the user's bucket.
    echo_of(
        app.get("/api/v1/things")
            .bearer_auth(app.customer("carol"))
            .send()
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn a_per_ip_route_limit_ignores_tokens() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .post(app.url("/api/v1/login"))
        .bearer_auth(app.customer("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "ratelimit-limit"), 1);
    echo_of(res).await;
    let res = app
        .client
        .post(app.url("/api/v1/login"))
        .bearer_auth(app.customer("b"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 429, "rate-limited").await;
    // Other routes still use the default buckets.
    echo_of(app.get("/api/v1/things").send().await.unwrap()).await;
}

#[tokio::test]
async fn refused_requests_carry_rate_limit_headers_too() {
    let app = TestApp::spawn().await;
    let res = app.get("/api/v1/mine").send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(header(&res, "ratelimit-limit"), 100);
    let res = app.get("/api/v1/ghost").send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("ratelimit-remaining"));
}
