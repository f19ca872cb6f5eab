//! Creating, reading and changing single products.

use reqwest::{header, StatusCode};
use serde_json::json;

use crate::helpers::{both, pointers, problem, product};

both!(
    an_admin_creates_a_product_and_gets_201_with_its_location,
    |app| {
        let body = json!({
            "sku": " bk-9001 ",
            "name": "  The Rust Programming Language ",
            "description": "The official book.\nSecond edition.",
            "category": "Books",
            "price": {"amount_minor": 3999, "currency": "EUR"},
            "in_stock": false,
            "id": "01900000-0000-7000-8000-000000000000",
            "created_at": "2000-01-01T00:00:00Z"
        });
        let res = app.create(&body).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let location = res.headers()[header::LOCATION].to_str().unwrap().to_owned();
        let created: serde_json::Value = res.json().await.unwrap();
        let id = created["id"].as_str().unwrap();
        assert_eq!(location, format!("/api/v1/products/{id}"));
        assert_ne!(
            id, "01900000-0000-7000-8000-000000000000",
            "a client-sent id is ignored"
        );
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
        assert_eq!(created["sku"], "BK-9001");
        assert_eq!(created["name"], "The Rust Programming Language");
        assert_eq!(
            created["description"],
            "The official book.\nSecond edition."
        );
        assert_eq!(created["category"], "books");
        assert_eq!(
            created["price"],
            json!({"amount_minor": 3999, "currency": "EUR"})
        );
        assert_eq!(
            created["in_stock"], false,
            "no stock until inventory reports a level for the SKU"
        );
        assert!(created.get("updated_at").is_none());
        let created_at = created["created_at"].as_str().unwrap();
        assert!(time::OffsetDateTime::parse(
            created_at,
            &time::format_description::well_known::Rfc3339
        )
        .is_ok());
        assert_ne!(created_at, "2000-01-01T00:00:00Z");
        assert_eq!(app.get_json(&location).await, created);
    }
);

both!(
    an_invalid_create_reports_every_field_with_its_pointer,
    |app| {
        let res = app.create(&json!({})).await;
        let body = problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(body["type"], "urn:bazaar:problem:validation");
        assert_eq!(
            pointers(&body),
            ["/sku", "/name", "/description", "/category", "/price"]
        );

        let res = app
            .create(&json!({
                "sku": "x", "name": "", "description": 42, "category": "Not a slug!",
                "price": {"amount_minor": 12.5, "currency": "BTC"}
            }))
            .await;
        let body = problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(
            pointers(&body),
            [
                "/sku",
                "/name",
                "/description",
                "/category",
                "/price/amount_minor",
                "/price/currency"
            ]
        );

        let res = app.create(&json!({"sku": "OK-1", "name": "n", "description": "", "category": "c", "price": {}})).await;
        let body = problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(pointers(&body), ["/price/amount_minor", "/price/currency"]);

        let res = app
            .create(
                &json!({"sku": "OK-1", "name": "n", "description": "", "category": "c",
                        "price": {"amount_minor": 10_000_000_001_i64, "currency": "usd"}}),
            )
            .await;
        let body = problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(pointers(&body), ["/price/amount_minor", "/price/currency"]);

        assert_eq!(
            app.get_json("/api/v1/products").await["items"],
            json!([]),
            "nothing was written"
        );
    }
);

both!(a_malformed_or_non_json_body_is_refused, |app| {
    let res = app
        .client
        .post(app.url("/api/v1/products"))
        .bearer_auth(app.admin_token())
        .header(header::CONTENT_TYPE, "application/json")
        .body("{\"sku\":")
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::BAD_REQUEST).await;
    let res = app
        .client
        .post(app.url("/api/v1/products"))
        .bearer_auth(app.admin_token())
        .header(header::CONTENT_TYPE, "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let res = app.create(&json!(["not", "an", "object"])).await;
    problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
});

both!(a_duplicate_sku_is_a_409, |app| {
    app.create_ok(&product("DUP-1", "First", "misc")).await;
    let res = app.create(&product("dup-1", "Second", "misc")).await;
    let body = problem(res, StatusCode::CONFLICT).await;
    assert_eq!(body["type"], "urn:bazaar:problem:conflict");
    assert_eq!(
        app.get_json("/api/v1/products").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
});

both!(a_patch_changes_only_the_fields_it_names, |app| {
    let created = app.create_ok(&product("PAT-1", "Old name", "misc")).await;
    let id = created["id"].as_str().unwrap();
    let res = app
        .patch(
            id,
            &json!({"name": " New name ", "price": {"amount_minor": 500, "currency": "GBP"},
                           "sku": "HACK-1", "category": "other", "id": "x"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let patched: serde_json::Value = res.json().await.unwrap();
    assert_eq!(patched["name"], "New name");
    assert_eq!(
        patched["price"],
        json!({"amount_minor": 500, "currency": "GBP"})
    );
    assert_eq!(patched["sku"], "PAT-1");
    assert_eq!(patched["category"], "misc");
    assert_eq!(patched["description"], created["description"]);
    assert_eq!(patched["created_at"], created["created_at"]);
    assert_eq!(
        app.get_json(&format!("/api/v1/products/{id}")).await,
        patched
    );

    let res = app.patch(id, &json!({"description": ""})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["description"],
        ""
    );
});

both!(an_empty_patch_answers_the_product_unchanged, |app| {
    let created = app.create_ok(&product("PAT-2", "Same", "misc")).await;
    let id = created["id"].as_str().unwrap();
    let res = app.patch(id, &json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap(), created);
});

both!(
    an_invalid_patch_is_422_with_pointers_and_changes_nothing,
    |app| {
        let created = app.create_ok(&product("PAT-3", "Keep", "misc")).await;
        let id = created["id"].as_str().unwrap();
        let res = app
            .patch(
                id,
                &json!({"name": "", "description": null, "price": {"amount_minor": -5}}),
            )
            .await;
        let body = problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(
            pointers(&body),
            [
                "/name",
                "/description",
                "/price/amount_minor",
                "/price/currency"
            ]
        );
        let res = app
            .patch(
                id,
                &json!({"name": "Valid", "price": {"amount_minor": 100, "currency": "XXX"}}),
            )
            .await;
        let body = problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(pointers(&body), ["/price/currency"]);
        assert_eq!(
            app.get_json(&format!("/api/v1/products/{id}")).await,
            created
        );
    }
);

both!(an_unknown_or_non_uuid_id_is_a_404, |app| {
    let unknown = uuid::Uuid::now_v7().to_string();
    for id in [
        unknown.as_str(),
        "not-a-uuid",
        "42",
        "%FF%FE",
        "01900000000070008000000000000000",
    ] {
        let path = format!("/api/v1/products/{id}");
        problem(app.get(&path).await, StatusCode::NOT_FOUND).await;
        problem(
            app.patch(id, &json!({"name": "x"})).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        problem(app.patch(id, &json!({})).await, StatusCode::NOT_FOUND).await;
    }
});

both!(the_service_is_ready_when_its_database_answers, |app| {
    let ready = app.get_json("/readyz").await;
    assert_eq!(ready["checks"]["db"], "ok");
});
