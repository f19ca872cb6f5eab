//! Refunds: once per key, never more than was captured.

use reqwest::StatusCode;

use crate::helpers::{both, json_of, pointers, problem};

both!(a_captured_charge_is_refunded_once_per_key, |app| {
    json_of(
        app.charge("ch-1", 1000, "tok_visa").await,
        StatusCode::CREATED,
    )
    .await;
    let refund = json_of(app.refund("re-1", "ch-1", 1000).await, StatusCode::CREATED).await;
    assert_eq!(refund["status"], "succeeded");
    assert_eq!(refund["amount_minor"], 1000);
    assert_eq!(refund["currency"], "USD");
    assert_eq!(refund["charge_idempotency_key"], "ch-1");
    let again = json_of(app.refund("re-1", "ch-1", 1000).await, StatusCode::OK).await;
    assert_eq!(again, refund);
    let charge = json_of(app.get("/v1/charges/ch-1").await, StatusCode::OK).await;
    assert_eq!(charge["refunded_minor"], 1000);
    assert_eq!(app.stats().await["refunds"], 1);
});

both!(refunds_never_exceed_the_capture, |app| {
    json_of(
        app.charge("ch-2", 1000, "tok_visa").await,
        StatusCode::CREATED,
    )
    .await;
    json_of(app.refund("re-2a", "ch-2", 600).await, StatusCode::CREATED).await;
    problem(app.refund("re-2b", "ch-2", 401).await, StatusCode::CONFLICT).await;
    json_of(app.refund("re-2c", "ch-2", 400).await, StatusCode::CREATED).await;
    problem(app.refund("re-2d", "ch-2", 1).await, StatusCode::CONFLICT).await;
    let charge = json_of(app.get("/v1/charges/ch-2").await, StatusCode::OK).await;
    assert_eq!(charge["refunded_minor"], 1000);
    assert_eq!(app.stats().await["refunds"], 2);
});

both!(concurrent_refunds_with_one_key_refund_once, |app| {
    json_of(
        app.charge("ch-3", 500, "tok_visa").await,
        StatusCode::CREATED,
    )
    .await;
    let answers = futures::future::join_all((0..6).map(|_| app.refund("re-3", "ch-3", 500))).await;
    let mut ids = Vec::new();
    for res in answers {
        let status = res.status();
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "{status}"
        );
        let body: serde_json::Value = res.json().await.unwrap();
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let charge = json_of(app.get("/v1/charges/ch-3").await, StatusCode::OK).await;
    assert_eq!(charge["refunded_minor"], 500);
    assert_eq!(app.stats().await["refunds"], 1);
});

both!(
    a_refund_key_reused_for_another_amount_is_a_conflict,
    |app| {
        json_of(
            app.charge("ch-4", 1000, "tok_visa").await,
            StatusCode::CREATED,
        )
        .await;
        json_of(app.refund("re-4", "ch-4", 100).await, StatusCode::CREATED).await;
        problem(app.refund("re-4", "ch-4", 200).await, StatusCode::CONFLICT).await;
        let charge = json_of(app.get("/v1/charges/ch-4").await, StatusCode::OK).await;
        assert_eq!(charge["refunded_minor"], 100);
    }
);

both!(declined_and_unknown_charges_cannot_be_refunded, |app| {
    json_of(
        app.charge("ch-5", 1000, "tok_declined").await,
        StatusCode::CREATED,
    )
    .await;
    problem(app.refund("re-5", "ch-5", 1000).await, StatusCode::CONFLICT).await;
    problem(
        app.refund("re-6", "ch-none", 1000).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(app.stats().await["refunds"], 0);
});

both!(an_invalid_refund_is_refused_with_pointers, |app| {
    let p = problem(
        app.post(
            "/v1/refunds",
            &serde_json::json!({"idempotency_key": "re-7", "amount_minor": -1}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(pointers(&p), ["/charge_idempotency_key", "/amount_minor"]);
});
