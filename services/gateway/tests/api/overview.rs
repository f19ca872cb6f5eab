use serde_json::{json, Value};

use crate::{
    helpers::assert_problem,
    shop::{Mode, Shop},
};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

async fn overview_ok(shop: &Shop) -> Value {
    let res = shop
        .get("/api/v1/me/overview")
        .bearer_auth(shop.customer())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let text = res.text().await.unwrap();
    assert!(!text.contains("127.0.0.1"), "leaks an address: {text}");
    serde_json::from_str(&text).unwrap()
}

fn warning_for<'a>(body: &'a Value, part: &str) -> &'a Value {
    body["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["part"] == part)
        .unwrap_or_else(|| panic!("no warning for {part} in {body}"))
}

#[tokio::test]
async fn the_overview_composes_user_recent_orders_and_unread_count() {
    let shop = Shop::spawn().await;
    let token = shop.customer();
    let res = shop
        .get("/api/v1/me/overview")
        .bearer_auth(&token)
        .header("traceparent", TRACEPARENT)
        .header("x-request-id", "overview-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-request-id"], "overview-1");
    assert!(res.headers().contains_key("ratelimit-remaining"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["warnings"], json!([]));
    assert_eq!(body["user"]["id"], "user-1");
    assert_eq!(body["unread_notifications"], 3);
    let orders = body["recent_orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["id"], "order-1");

    // Each part was asked for what the contract says, with the caller's token and trace.
    let user_call = &body["user"]["seen"];
    let orders_call = &orders[0]["seen"];
    assert_eq!(user_call["path"], "/api/v1/users/me");
    assert_eq!(orders_call["path"], "/api/v1/orders");
    assert_eq!(orders_call["query"], "limit=5");
    assert_eq!(
        (
            shop.hits("identity"),
            shop.hits("order"),
            shop.hits("notification")
        ),
        (1, 1, 1)
    );
    for call in [user_call, orders_call] {
        assert_eq!(call["authorization"], format!("Bearer {token}"));
        assert_eq!(call["x_request_id"], "overview-1");
        let tp = call["traceparent"].as_str().unwrap();
        assert!(
            tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "trace not continued: {tp}"
        );
    }
}

#[tokio::test]
async fn a_service_without_instances_leaves_its_part_null_with_a_warning() {
    let shop = Shop::spawn_with(&[("order", None)]).await;
    let body = overview_ok(&shop).await;
    assert_eq!(body["recent_orders"], Value::Null);
    assert_eq!(body["user"]["id"], "user-1");
    assert_eq!(body["unread_notifications"], 3);
    assert_eq!(body["warnings"].as_array().unwrap().len(), 1);
    assert_eq!(
        warning_for(&body, "recent_orders"),
        &json!({"part": "recent_orders", "service": "order", "detail": "order is unavailable"})
    );

    let metrics = shop
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted = |part: &str, outcome: &str| {
        metrics.lines().any(|l| {
            l.starts_with("bazaar_gateway_composition_parts_total{")
                && l.contains(&format!("part=\"{part}\""))
                && l.contains(&format!("outcome=\"{outcome}\""))
        })
    };
    assert!(counted("recent_orders", "unavailable"), "{metrics}");
    assert!(counted("user", "ok"), "{metrics}");
}

#[tokio::test]
async fn a_part_slower_than_its_timeout_is_left_out_and_the_rest_returns() {
    let shop = Shop::spawn_with(&[("notification", Some(Mode::Slow))]).await;
    let body = overview_ok(&shop).await;
    assert_eq!(body["unread_notifications"], Value::Null);
    assert_eq!(body["user"]["id"], "user-1");
    assert_eq!(body["recent_orders"][0]["id"], "order-1");
    let warning = warning_for(&body, "unread_notifications");
    assert_eq!(warning["service"], "notification");
    assert_eq!(warning["detail"], "notification did not answer in time");
}

#[tokio::test]
async fn failing_and_garbled_parts_are_warnings_without_upstream_details() {
    let shop = Shop::spawn_with(&[
        ("identity", Some(Mode::Fail)),
        ("notification", Some(Mode::BadJson)),
    ])
    .await;
    let body = overview_ok(&shop).await;
    assert_eq!(body["user"], Value::Null);
    assert_eq!(body["unread_notifications"], Value::Null);
    assert_eq!(body["recent_orders"][0]["id"], "order-1");
    assert_eq!(
        warning_for(&body, "user")["detail"],
        "identity is unavailable"
    );
    assert_eq!(
        warning_for(&body, "unread_notifications")["detail"],
        "notification is unavailable"
    );
    assert!(!body.to_string().contains("boom"));
}

#[tokio::test]
async fn a_token_rejected_by_a_service_makes_the_overview_401() {
    let shop = Shop::spawn_with(&[("identity", Some(Mode::RejectToken))]).await;
    let res = shop
        .get("/api/v1/me/overview")
        .bearer_auth(shop.customer())
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
}

#[tokio::test]
async fn the_overview_needs_a_token() {
    let shop = Shop::spawn().await;
    let res = shop.get("/api/v1/me/overview").send().await.unwrap();
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    assert_problem(res, 401, "unauthorized").await;
    let res = shop
        .get("/api/v1/me/overview")
        .bearer_auth("not-a-jwt")
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
    assert_eq!(shop.total_hits(), 0);

    let res = shop
        .post("/api/v1/me/overview")
        .bearer_auth(shop.customer())
        .send()
        .await
        .unwrap();
    assert_problem(res, 405, "method-not-allowed").await;
}
