//! Request validation: every problem with its pointer, and the Idempotency-Key rules.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{body, both, pointers, problem, P1, P2};

both!(
    an_invalid_body_reports_every_field_with_its_pointer,
    |env| {
        let app = env.start("a").await;
        let user = app.customer();
        let bad = json!({
            "items": [
                {"product_id": "not-a-uuid", "quantity": 1},
                {"product_id": P1.0, "quantity": 0},
                {"product_id": P2.0, "quantity": 101},
                {"quantity": 2.5}
            ],
            "shipping_address": {"name": "", "line1": "x".repeat(201), "city": "Berlin",
                                 "postal_code": 10115, "country": "XX"},
            "payment": {"card_token": "t".repeat(65)}
        });
        let res = app.place_with(&user, Some("k1"), &bad, &[]).await;
        let p = problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(p["type"], "urn:bazaar:problem:validation");
        assert_eq!(
            pointers(&p),
            [
                "/items/0/product_id",
                "/items/1/quantity",
                "/items/2/quantity",
                "/items/3/product_id",
                "/items/3/quantity",
                "/shipping_address/name",
                "/shipping_address/line1",
                "/shipping_address/postal_code",
                "/shipping_address/country",
                "/payment/card_token"
            ]
        );

        let res = app.place_with(&user, Some("k2"), &json!({}), &[]).await;
        let p = problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(pointers(&p), ["/items", "/shipping_address", "/payment"]);

        let mut too_many = body(&[(P1.0, 1)], "tok_visa");
        too_many["items"] =
            json!((0..51)
        .map(|i| json!({"product_id": format!("01900000-0000-7000-8000-{i:012}"), "quantity": 1}))
        .collect::<Vec<_>>());
        let p = problem(
            app.place_with(&user, Some("k3"), &too_many, &[]).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(pointers(&p), ["/items"]);

        let mut dup = body(&[(P1.0, 1), (P1.0, 2)], "tok_visa");
        dup["shipping_address"]["country"] = json!("de");
        let p = problem(
            app.place_with(&user, Some("k4"), &dup, &[]).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(pointers(&p), ["/items/1/product_id"]);

        // Nothing was placed.
        let list: serde_json::Value = app.get(&user, "/api/v1/orders").await.json().await.unwrap();
        assert_eq!(list["items"], json!([]));
    }
);

both!(the_idempotency_key_is_required_and_bounded, |env| {
    let app = env.start("a").await;
    let user = app.customer();
    let b = body(&[(P1.0, 1)], "tok_visa");
    for key in [None, Some(""), Some("a b"), Some("é")] {
        let res = app.place_with(&user, key, &b, &[]).await;
        let p = problem(res, StatusCode::BAD_REQUEST).await;
        assert_eq!(p["type"], "urn:bazaar:problem:malformed-request", "{key:?}");
    }
    let long = "k".repeat(256);
    let p = problem(
        app.place_with(&user, Some(&long), &b, &[]).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("255"), "{p}");
    let just_right = "k".repeat(255);
    let res = app.place_with(&user, Some(&just_right), &b, &[]).await;
    assert_eq!(res.status(), StatusCode::CREATED);
});

both!(placing_needs_a_token, |env| {
    let app = env.start("a").await;
    let res = app
        .client
        .post(app.url("/api/v1/orders"))
        .header("Idempotency-Key", "k")
        .json(&body(&[(P1.0, 1)], "tok_visa"))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::UNAUTHORIZED).await;
});

both!(
    an_unknown_product_is_422_and_does_not_use_up_the_key,
    |env| {
        let app = env.start("a").await;
        let user = app.customer();
        let unknown = "01900000-0000-7000-8000-0000000000ff";
        let b = body(&[(P1.0, 1), (unknown, 2)], "tok_visa");
        let p = problem(
            app.place_with(&user, Some("retry-me"), &b, &[]).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(pointers(&p), ["/items/1/product_id"]);
        // The catalog learns of the product; the same request with the same key now works.
        env.fakes.catalog.add(unknown, "SKU-NEW", "New thing", 250);
        let res = app.place_with(&user, Some("retry-me"), &b, &[]).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        assert!(res.headers().get("idempotent-replayed").is_none());
        let order: serde_json::Value = res.json().await.unwrap();
        assert_eq!(
            order["total"],
            json!({"amount_minor": 1299 + 500, "currency": "USD"})
        );
        assert_eq!(order["items"][1]["sku"], "SKU-NEW");
    }
);
