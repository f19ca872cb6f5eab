//! Injected faults and the admin endpoints that set them.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{both, json_of, pointers, problem};

both!(a_down_provider_answers_503_without_charging, |app| {
    app.behave(json!({"down": true})).await;
    let res = app.charge("k-down", 100, "tok_visa").await;
    assert!(res.headers().contains_key("retry-after"));
    problem(res, StatusCode::SERVICE_UNAVAILABLE).await;
    problem(
        app.get("/v1/charges/k-down").await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    app.behave(json!({"down": false})).await;
    problem(app.get("/v1/charges/k-down").await, StatusCode::NOT_FOUND).await;
    assert_eq!(app.stats().await["charges"], 0);
    json_of(
        app.charge("k-down", 100, "tok_visa").await,
        StatusCode::CREATED,
    )
    .await;
});

both!(
    an_error_rate_of_one_fails_every_call_without_effect,
    |app| {
        app.behave(json!({"error_rate": 1.0})).await;
        for _ in 0..3 {
            problem(
                app.charge("k-err", 100, "tok_visa").await,
                StatusCode::SERVICE_UNAVAILABLE,
            )
            .await;
        }
        app.behave(json!({"error_rate": 0.0})).await;
        assert_eq!(app.stats().await["charges"], 0);
    }
);

both!(the_behaviour_can_be_read_back, |app| {
    let before = json_of(
        app.client
            .get(app.url("/admin/behaviour"))
            .bearer_auth(app.admin_token())
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        before,
        json!({"latency_ms": 0, "error_rate": 0.0, "down": false})
    );
    app.behave(json!({"latency_ms": 40, "error_rate": 0.5, "down": false}))
        .await;
    let after = json_of(
        app.client
            .get(app.url("/admin/behaviour"))
            .bearer_auth(app.admin_token())
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        after,
        json!({"latency_ms": 40, "error_rate": 0.5, "down": false})
    );
});

both!(injected_latency_delays_calls, |app| {
    app.behave(json!({"latency_ms": 400})).await;
    // Lower bound only: the call cannot be faster than the injected latency.
    let started = std::time::Instant::now();
    json_of(
        app.charge("k-slow", 100, "tok_visa").await,
        StatusCode::CREATED,
    )
    .await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));
    // Admin endpoints are not slowed, so the fault can always be lifted.
    app.behave(json!({})).await;
});

both!(admin_endpoints_need_an_admin, |app| {
    let res = app
        .client
        .put(app.url("/admin/behaviour"))
        .json(&json!({"down": true}))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::UNAUTHORIZED).await;
    let res = app
        .client
        .put(app.url("/admin/behaviour"))
        .bearer_auth(app.token(&["customer"]))
        .json(&json!({"down": true}))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::FORBIDDEN).await;
    problem(app.get("/admin/stats").await, StatusCode::UNAUTHORIZED).await;
    let res = app
        .client
        .get(app.url("/admin/behaviour"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::UNAUTHORIZED).await;
    // Nothing changed: the provider still charges.
    json_of(
        app.charge("k-auth", 100, "tok_visa").await,
        StatusCode::CREATED,
    )
    .await;
});

both!(an_invalid_behaviour_is_refused, |app| {
    let res = app
        .client
        .put(app.url("/admin/behaviour"))
        .bearer_auth(app.admin_token())
        .json(&json!({"error_rate": 1.5}))
        .send()
        .await
        .unwrap();
    let p = problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(pointers(&p), ["/error_rate"]);
    let res = app
        .client
        .put(app.url("/admin/behaviour"))
        .bearer_auth(app.admin_token())
        .json(&json!({"latency_ms": -1}))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
});
