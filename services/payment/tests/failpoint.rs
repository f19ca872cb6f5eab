#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The deliberate bug behind the `payment.charge.double` failpoint, in a test binary of its
//! own: failpoints are read once per process.

#[path = "api/helpers.rs"]
#[allow(dead_code, unused_imports, unused_macros)]
mod helpers;

use helpers::{json_of, order_id, Backend, Options, TestApp};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn the_double_charge_failpoint_captures_twice_at_the_processor_only() {
    // Before anything reads the failpoint table.
    std::env::set_var("BAZAAR_FAILPOINTS", "payment.charge.double=error");
    let app = TestApp::spawn(Backend::Sqlite, Options::default())
        .await
        .unwrap();
    let id = order_id();
    app.charge_captured(&id, 1234).await;

    // The processor captured the order twice, under two keys.
    let psp: Value = json_of(
        app.http
            .get(format!("{}/admin/state", app.psp.base))
            .bearer_auth(app.admin_token())
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let mut keys: Vec<(&str, &str, i64)> = psp["charges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["idempotency_key"].as_str().unwrap(),
                c["status"].as_str().unwrap(),
                c["amount_minor"].as_i64().unwrap(),
            )
        })
        .collect();
    keys.sort_unstable();
    let (key, dup) = (format!("order-{id}"), format!("order-{id}-dup"));
    assert_eq!(
        keys,
        [
            (key.as_str(), "captured", 1234),
            (dup.as_str(), "captured", 1234)
        ]
    );

    // The payment service knows of one capture only.
    let state: Value = json_of(
        app.get_as("/admin/state", Some(&app.admin_token())).await,
        StatusCode::OK,
    )
    .await;
    let payments = state["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0]["status"], "captured");
    assert_eq!(payments[0]["captured_minor"], 1234);
    assert_eq!(payments[0]["psp_charge_key"], key.as_str());
    assert_eq!(payments[0]["attempts"], 1);
    assert_eq!(app.events_for(&id, 1).await.len(), 1);
}
