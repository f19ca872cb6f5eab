//! Who may do what: public reads, admin writes, and tokens checked on every route.

use bazaar_auth::{Claims, SigningKey};
use reqwest::{header, StatusCode};
use serde_json::json;

use crate::helpers::{both, problem, product};

both!(listing_and_reading_products_needs_no_token, |app| {
    let created = app
        .create_ok(&product("PUB-1", "Public thing", "misc"))
        .await;
    let list = app.get_json("/api/v1/products").await;
    assert_eq!(list["items"][0]["id"], created["id"]);
    let one = app
        .get_json(&format!(
            "/api/v1/products/{}",
            created["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(one, created);
});

both!(a_customer_may_not_create_or_change_products, |app| {
    let created = app.create_ok(&product("CUS-1", "Thing", "misc")).await;
    let res = app
        .client
        .post(app.url("/api/v1/products"))
        .bearer_auth(app.customer_token())
        .json(&product("CUS-2", "Other", "misc"))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::FORBIDDEN).await;
    let res = app
        .client
        .patch(app.url(&format!(
            "/api/v1/products/{}",
            created["id"].as_str().unwrap()
        )))
        .bearer_auth(app.customer_token())
        .json(&json!({"name": "Mine now"}))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::FORBIDDEN).await;
    assert_eq!(
        app.get_json("/api/v1/products").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
});

both!(
    writing_without_a_token_is_401_with_a_bearer_challenge,
    |app| {
        let res = app
            .client
            .post(app.url("/api/v1/products"))
            .json(&product("ANON-1", "Thing", "misc"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
        problem(res, StatusCode::UNAUTHORIZED).await;
        let res = app
            .client
            .patch(app.url("/api/v1/products/01900000-0000-7000-8000-000000000000"))
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
        problem(res, StatusCode::UNAUTHORIZED).await;
    }
);

both!(
    an_invalid_or_expired_token_is_refused_even_on_the_public_list,
    |app| {
        let an_hour_ago = bazaar_auth::unix_now() - 3600;
        let expired = app
            .key
            .sign(&Claims::new_access(
                "u1",
                vec!["customer".into()],
                an_hour_ago,
            ))
            .unwrap();
        for token in ["garbage", "a.b.c", expired.as_str()] {
            let res = app
                .client
                .get(app.url("/api/v1/products"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(
                res.headers()[header::WWW_AUTHENTICATE],
                "Bearer error=\"invalid_token\"",
                "{token}"
            );
            problem(res, StatusCode::UNAUTHORIZED).await;
        }
        let res = app
            .client
            .get(app.url("/api/v1/products"))
            .header(header::AUTHORIZATION, "Basic YWRtaW46YWRtaW4=")
            .send()
            .await
            .unwrap();
        problem(res, StatusCode::UNAUTHORIZED).await;
    }
);

both!(a_token_signed_by_another_key_is_refused, |app| {
    let stranger = SigningKey::generate().unwrap();
    let token = stranger
        .sign(&Claims::new_access(
            "u1",
            vec!["customer".into(), "admin".into()],
            bazaar_auth::unix_now(),
        ))
        .unwrap();
    let res = app
        .client
        .post(app.url("/api/v1/products"))
        .bearer_auth(&token)
        .json(&product("KEY-1", "Thing", "misc"))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::UNAUTHORIZED).await;
    let res = app
        .client
        .get(app.url("/api/v1/products"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::UNAUTHORIZED).await;
    assert_eq!(app.get_json("/api/v1/products").await["items"], json!([]));
});

both!(
    forged_identity_headers_without_a_token_grant_nothing,
    |app| {
        let res = app
            .client
            .post(app.url("/api/v1/products"))
            .header("X-User-Id", "01900000-0000-7000-8000-000000000001")
            .header("X-Roles", "admin")
            .header("X-User-Roles", "admin")
            .json(&product("FORGE-1", "Thing", "misc"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
        problem(res, StatusCode::UNAUTHORIZED).await;
        assert_eq!(app.get_json("/api/v1/products").await["items"], json!([]));
    }
);
