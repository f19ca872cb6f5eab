//! `GET /admin/payments` (and its public path): one payment, pages, and who may look.

use std::collections::BTreeSet;

use base64::Engine as _;
use reqwest::StatusCode;

use crate::helpers::{both, json_of, order_id, Options};

both!(
    one_payment_is_shown_by_order_id,
    Options::default(),
    |app| {
        let id = order_id();
        app.charge_captured(&id, 1234).await;
        let admin = app.admin_token();
        for path in ["/admin/payments", "/api/v1/admin/payments"] {
            let body = json_of(
                app.get_as(&format!("{path}?order_id={id}"), Some(&admin))
                    .await,
                StatusCode::OK,
            )
            .await;
            assert_eq!(
                body,
                serde_json::json!({"order_id": id, "captured_minor": 1234, "refunded_minor": 0, "attempts": 1})
            );
        }
        let res = app
            .get_as(
                &format!("/admin/payments?order_id={}", order_id()),
                Some(&admin),
            )
            .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let res = app
            .get_as("/admin/payments?order_id=a%2Fb", Some(&admin))
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    }
);

both!(only_admins_see_payments, Options::default(), |app| {
    let id = order_id();
    app.charge_captured(&id, 10).await;
    let path = format!("/admin/payments?order_id={id}");
    let res = app.get_as(&path, None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let res = app.get_as(&path, Some(&app.token(&["customer"]))).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app.get_as(&path, Some("garbage")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app.get_as("/api/v1/admin/payments", None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
});

both!(payments_are_listed_in_pages, Options::default(), |app| {
    let mut ids = BTreeSet::new();
    for _ in 0..5 {
        let id = order_id();
        app.charge_captured(&id, 100).await;
        ids.insert(id);
    }
    let admin = app.admin_token();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/admin/payments?limit=2&cursor={c}"),
            None => "/admin/payments?limit=2".to_owned(),
        };
        let page = json_of(app.get_as(&path, Some(&admin)).await, StatusCode::OK).await;
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["captured_minor"], 100);
            seen.push(item["order_id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids.into_iter().collect::<Vec<_>>());
    let all = json_of(
        app.get_as("/admin/payments", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 5);
    assert_eq!(all["next_cursor"], serde_json::Value::Null);
});

both!(bad_list_parameters_are_400, Options::default(), |app| {
    let admin = app.admin_token();
    for q in ["limit=0", "limit=101", "limit=x", "cursor=%21%21"] {
        let res = app
            .get_as(&format!("/admin/payments?{q}"), Some(&admin))
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{q}"
        );
    }
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("not an id");
    let res = app
        .get_as(&format!("/admin/payments?cursor={forged}"), Some(&admin))
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
});
