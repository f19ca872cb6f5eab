//! Charges: test tokens decide the outcome, and a key names one charge forever.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{both, json_of, pointers, problem, TestApp};

both!(a_test_card_is_captured, |app| {
    let charge = json_of(
        app.charge("k-visa", 1299, "tok_visa").await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(charge["status"], "captured");
    assert_eq!(charge["amount_minor"], 1299);
    assert_eq!(charge["currency"], "USD");
    assert_eq!(charge["idempotency_key"], "k-visa");
    assert_eq!(charge["decline_code"], serde_json::Value::Null);
    assert!(charge["id"].as_str().unwrap().starts_with("ch_"));
    let any_other = json_of(
        app.charge("k-other", 5, "tok_mastercard").await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(any_other["status"], "captured");
});

both!(tok_declined_is_declined_with_a_code, |app| {
    let charge = json_of(
        app.charge("k-declined", 1299, "tok_declined").await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(charge["status"], "declined");
    assert_eq!(charge["decline_code"], "card_declined");
    let stats = app.stats().await;
    assert_eq!(stats["declined"], 1);
    assert_eq!(stats["captured"], 0);
});

both!(
    the_same_key_returns_the_first_charge_without_charging_again,
    |app| {
        let first = json_of(
            app.charge("k-1", 1000, "tok_visa").await,
            StatusCode::CREATED,
        )
        .await;
        let again = json_of(app.charge("k-1", 1000, "tok_visa").await, StatusCode::OK).await;
        assert_eq!(again, first);
        assert_eq!(app.stats().await["charges"], 1);
    }
);

both!(the_same_key_with_another_amount_is_a_conflict, |app| {
    json_of(
        app.charge("k-2", 1000, "tok_visa").await,
        StatusCode::CREATED,
    )
    .await;
    problem(
        app.charge("k-2", 999, "tok_visa").await,
        StatusCode::CONFLICT,
    )
    .await;
    let stored = json_of(app.get("/v1/charges/k-2").await, StatusCode::OK).await;
    assert_eq!(stored["amount_minor"], 1000);
    assert_eq!(app.stats().await["charges"], 1);
});

both!(concurrent_requests_with_one_key_make_one_charge, |app| {
    let calls = (0..8).map(|_| app.charge("k-race", 700, "tok_visa"));
    let answers = futures::future::join_all(calls).await;
    let mut ids = Vec::new();
    let mut created = 0;
    for res in answers {
        if res.status() == StatusCode::CREATED {
            created += 1;
        }
        let body = res.json::<serde_json::Value>().await.unwrap();
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(created, 1);
    assert_eq!(app.stats().await["charges"], 1);
});

both!(a_charge_is_found_by_its_key, |app| {
    let charge = json_of(
        app.charge("k-find", 1, "tok_visa").await,
        StatusCode::CREATED,
    )
    .await;
    let found = json_of(app.get("/v1/charges/k-find").await, StatusCode::OK).await;
    assert_eq!(found, charge);
    problem(
        app.get("/v1/charges/k-unknown").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get("/v1/charges/not%20a%20key").await,
        StatusCode::NOT_FOUND,
    )
    .await;
});

#[tokio::test]
async fn tok_timeout_records_the_capture_before_answering_late() {
    // The answer is held back far longer than the test runs: GET must find the charge while
    // the POST is still waiting.
    let db =
        std::sync::Arc::new(crate::helpers::TestDb::new(crate::helpers::Backend::Sqlite).unwrap());
    let app = TestApp::start(
        db,
        bazaar_auth::SigningKey::generate().unwrap(),
        Duration::from_secs(600),
    )
    .await;
    let slow = {
        let client = app.client.clone();
        let url = app.url("/v1/charges");
        tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"idempotency_key": "k-slow", "amount_minor": 4200, "currency": "EUR", "card_token": "tok_timeout"}))
                .send()
                .await
        })
    };
    let found = wait_for_charge(&app, "k-slow").await;
    assert_eq!(found["status"], "captured");
    assert_eq!(found["amount_minor"], 4200);
    assert!(!slow.is_finished(), "the tok_timeout answer came early");
    slow.abort();
    // A repeat of the key is answered at once with the recorded charge.
    let again = json_of(
        app.post("/v1/charges", &json!({"idempotency_key": "k-slow", "amount_minor": 4200, "currency": "EUR", "card_token": "tok_timeout"})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(again, found);
}

both!(
    tok_timeout_answers_with_the_capture_after_the_delay,
    |app| {
        let answered = json_of(
            app.charge("k-late", 10, "tok_timeout").await,
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(answered["status"], "captured");
        assert_eq!(app.stats().await["captured"], 1);
    }
);

both!(a_card_token_that_is_not_a_test_token_is_refused, |app| {
    let p = problem(
        app.charge("k-pan", 100, "4242424242424242").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(pointers(&p), ["/card_token"]);
    assert_eq!(app.stats().await["charges"], 0);
});

both!(every_invalid_field_is_reported, |app| {
    let p = problem(
        app.post(
            "/v1/charges",
            &json!({"idempotency_key": "", "amount_minor": 0, "currency": "usd"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        pointers(&p),
        [
            "/idempotency_key",
            "/amount_minor",
            "/currency",
            "/card_token"
        ]
    );
    let p = problem(
        app.post("/v1/charges", &json!({"idempotency_key": "k", "amount_minor": "ten", "currency": "USD", "card_token": "tok_visa"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(pointers(&p), ["/amount_minor"]);
});

#[tokio::test]
async fn charges_survive_a_restart() {
    let mut first = TestApp::spawn(crate::helpers::Backend::Sqlite)
        .await
        .unwrap();
    let charge = json_of(
        first.charge("k-kept", 321, "tok_visa").await,
        StatusCode::CREATED,
    )
    .await;
    first.stop();
    let second = TestApp::start(
        first.db.clone(),
        bazaar_auth::SigningKey::generate().unwrap(),
        Duration::from_millis(10),
    )
    .await;
    let again = json_of(
        second.charge("k-kept", 321, "tok_visa").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(again, charge);
    assert_eq!(second.stats().await["charges"], 1);
}

/// Polls `GET /v1/charges/{key}` until it is found (generous timeout).
async fn wait_for_charge(app: &TestApp, key: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let res = app.get(&format!("/v1/charges/{key}")).await;
        if res.status() == StatusCode::OK {
            return res.json().await.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "charge {key} never appeared"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
