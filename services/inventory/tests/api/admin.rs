//! The admin REST API: levels, stock counts, restocks, the ledger, and who may use them.

use reqwest::{header, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{both, order, pointers, problem};

both!(a_stock_count_creates_the_record_and_sets_on_hand, |app| {
    problem(app.get_levels("NEW-1").await, StatusCode::NOT_FOUND).await;
    let body = app.stock("new-1", 12).await;
    assert_eq!(
        body,
        json!({"sku": "NEW-1", "on_hand": 12, "reserved": 0, "available": 12})
    );
    assert_eq!(app.levels("NEW-1").await, (12, 0, 12));
    assert_eq!(
        app.levels(" new-1 ").await,
        (12, 0, 12),
        "SKUs are normalised"
    );
    let body = app.stock("NEW-1", 0).await;
    assert_eq!(body["on_hand"], 0);
    let ledger = app.ledger("NEW-1").await;
    let deltas: Vec<i64> = ledger["movements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["kind"], "adjustment");
            m["quantity"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(deltas, [12, -12]);
    assert_eq!(ledger["consistent"], true);
});

both!(every_invalid_count_is_a_422_pointing_at_on_hand, |app| {
    for bad in [
        json!({}),
        json!({"on_hand": null}),
        json!({"on_hand": -1}),
        json!({"on_hand": 2.5}),
        json!({"on_hand": "7"}),
        json!({"on_hand": false}),
        json!({"on_hand": 18446744073709551615_u64}),
        json!({"on_hand": 1_000_000_000_001_i64}),
    ] {
        let p = problem(
            app.put("VAL-1", &bad).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(p["type"], "urn:bazaar:problem:validation", "{bad}");
        assert_eq!(pointers(&p), ["/on_hand"], "{bad}");
    }
    // Nothing was created by the refused counts.
    problem(app.get_levels("VAL-1").await, StatusCode::NOT_FOUND).await;
    // Malformed JSON is 400, a body that is not an object 422 at the root.
    let res = app
        .client
        .put(app.url("/api/v1/inventory/VAL-1"))
        .bearer_auth(app.admin_token())
        .header(header::CONTENT_TYPE, "application/json")
        .body("{\"on_hand\": ")
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::BAD_REQUEST).await;
    let p = problem(
        app.put("VAL-1", &json!([5])).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(pointers(&p), [""]);
});

both!(every_invalid_restock_is_a_422_pointing_at_quantity, |app| {
    app.stock("RST-1", 5).await;
    for bad in [
        json!({}),
        json!({"quantity": null}),
        json!({"quantity": 0}),
        json!({"quantity": -4}),
        json!({"quantity": 1_000_001}),
        json!({"quantity": 1.0}),
        json!({"quantity": "3"}),
    ] {
        let p = problem(
            app.restock("RST-1", &bad).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(pointers(&p), ["/quantity"], "{bad}");
    }
    assert_eq!(app.levels("RST-1").await, (5, 0, 5));
    let res = app.restock("RST-1", &json!({"quantity": 1_000_000})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"sku": "RST-1", "on_hand": 1_000_005, "reserved": 0, "available": 1_000_005})
    );
    let res = app.restock("RST-1", &json!({"quantity": 1})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.levels("RST-1").await, (1_000_006, 0, 1_000_006));
    assert_eq!(app.ledger("RST-1").await["consistent"], true);
});

both!(
    restocking_an_unknown_sku_is_404_and_creates_nothing,
    |app| {
        problem(
            app.restock("GHOST-1", &json!({"quantity": 5})).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        problem(app.get_levels("GHOST-1").await, StatusCode::NOT_FOUND).await;
    }
);

both!(restocking_past_the_maximum_level_is_a_conflict, |app| {
    app.stock("MAX-1", 1_000_000_000_000).await;
    problem(
        app.restock("MAX-1", &json!({"quantity": 1})).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(app.levels("MAX-1").await.0, 1_000_000_000_000);
});

both!(
    a_count_below_the_reserved_units_is_a_409_and_changes_nothing,
    |app| {
        app.stock("RSV-1", 10).await;
        let o = order();
        let res = app.reserve(&o, &[("RSV-1", 4)]).await;
        assert_eq!(
            res.status(),
            bazaar_proto::inventory::ReservationStatus::Reserved
        );
        let p = problem(
            app.put("RSV-1", &json!({"on_hand": 3})).await,
            StatusCode::CONFLICT,
        )
        .await;
        assert_eq!(p["type"], "urn:bazaar:problem:conflict");
        assert_eq!(app.levels("RSV-1").await, (10, 4, 6));
        // Exactly the reserved units is allowed: nothing left to sell.
        let body = app.stock("RSV-1", 4).await;
        assert_eq!(
            body,
            json!({"sku": "RSV-1", "on_hand": 4, "reserved": 4, "available": 0})
        );
        assert_eq!(app.ledger("RSV-1").await["consistent"], true);
    }
);

both!(a_malformed_sku_in_the_path_is_404, |app| {
    for bad in ["AB", "A_B_C", "-ABC", "%C3%84BC"] {
        problem(app.get_levels(bad).await, StatusCode::NOT_FOUND).await;
        problem(
            app.put(bad, &json!({"on_hand": 1})).await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
});

both!(admin_routes_need_an_admin_token, |app| {
    app.stock("AUTH-1", 3).await;
    let requests = |token: Option<String>| {
        let c = &app.client;
        let with = |b: reqwest::RequestBuilder| match &token {
            Some(t) => b.bearer_auth(t),
            None => b,
        };
        vec![
            with(c.get(app.url("/api/v1/inventory/AUTH-1"))),
            with(
                c.put(app.url("/api/v1/inventory/AUTH-1"))
                    .json(&json!({"on_hand": 9})),
            ),
            with(
                c.post(app.url("/api/v1/inventory/AUTH-1/restock"))
                    .json(&json!({"quantity": 9})),
            ),
            with(c.get(app.url("/admin/ledger/AUTH-1"))),
            with(c.get(app.url("/admin/dead-letters"))),
        ]
    };
    for req in requests(None) {
        let res = req.send().await.unwrap();
        assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
        problem(res, StatusCode::UNAUTHORIZED).await;
    }
    for req in requests(Some(app.customer_token())) {
        problem(req.send().await.unwrap(), StatusCode::FORBIDDEN).await;
    }
    for req in requests(Some("not.a.token".to_owned())) {
        problem(req.send().await.unwrap(), StatusCode::UNAUTHORIZED).await;
    }
    assert_eq!(app.levels("AUTH-1").await, (3, 0, 3));
});

both!(the_ledger_lists_every_movement_of_a_sku, |app| {
    app.stock("LED-1", 10).await;
    let (a, b) = (order(), order());
    app.reserve(&a, &[("LED-1", 3)]).await;
    app.reserve(&b, &[("LED-1", 2)]).await;
    app.release(&a, "customer_cancelled").await;
    app.commit(&b).await;
    let ledger = app.ledger("LED-1").await;
    let got: Vec<(String, i64, Option<String>)> = ledger["movements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap().to_owned(),
                m["quantity"].as_i64().unwrap(),
                m["order_id"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("adjustment".to_owned(), 10, None),
            ("reserve".to_owned(), 3, Some(a.clone())),
            ("reserve".to_owned(), 2, Some(b.clone())),
            ("release".to_owned(), -3, Some(a.clone())),
            ("commit".to_owned(), -2, Some(b.clone())),
        ]
    );
    assert_eq!(ledger["on_hand"], 8);
    assert_eq!(ledger["reserved"], 0);
    assert_eq!(ledger["on_hand_from_movements"], 8);
    assert_eq!(ledger["reserved_from_movements"], 0);
    assert_eq!(ledger["consistent"], true);
    let res = app
        .client
        .get(app.url("/admin/ledger/NOPE-1"))
        .bearer_auth(app.admin_token())
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::NOT_FOUND).await;
});

both!(the_service_reports_ready_and_exposes_metrics, |app| {
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.stock("MET-1", 1).await;
    app.reserve(&order(), &[("MET-1", 1)]).await;
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("bazaar_inventory_reservations_total{outcome=\"reserved\"}"),
        "{metrics}"
    );
});
