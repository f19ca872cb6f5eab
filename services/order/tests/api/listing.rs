//! Reading orders: one order (owner or admin), and the caller's list from the read model.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{body, both, eventually, eventually_some, problem, P1, P2};

both!(an_order_is_visible_to_its_owner_and_admins_only, |env| {
    let app = env.start("a").await;
    let (owner, other, admin) = (app.customer(), app.customer(), app.admin());
    let order = app.place_ok(&owner, &body(&[(P1.0, 1)], "tok_visa")).await;
    let id = order["id"].as_str().unwrap();
    assert_eq!(app.order(&owner, id).await["id"], id);
    assert_eq!(app.order(&admin, id).await["id"], id);
    problem(
        app.get(&other, &format!("/api/v1/orders/{id}")).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get(&owner, "/api/v1/orders/not-a-uuid").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get(
            &owner,
            "/api/v1/orders/01900000-0000-7000-8000-00000000dead",
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let res = app
        .client
        .get(app.url(&format!("/api/v1/orders/{id}")))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::UNAUTHORIZED).await;
});

async fn list(app: &crate::helpers::TestApp, user: &crate::helpers::User, query: &str) -> Value {
    let res = app.get(user, &format!("/api/v1/orders{query}")).await;
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    serde_json::from_str(&text).unwrap()
}

both!(
    the_list_comes_from_the_read_model_newest_first_in_pages,
    |env| {
        let app = env.start("a").await;
        let (user, other) = (app.customer(), app.customer());
        let mut ids = Vec::new();
        for q in 1..=5 {
            let o = app
                .place_ok(&user, &body(&[(P1.0, q), (P2.0, 1)], "tok_visa"))
                .await;
            ids.push(o["id"].as_str().unwrap().to_owned());
        }
        app.place_ok(&other, &body(&[(P1.0, 1)], "tok_visa")).await;
        ids.reverse();
        // The projection catches up with every order, confirmed.
        let all = eventually_some(|| async {
            let all = list(&app, &user, "?limit=100").await;
            let items = all["items"].as_array().unwrap();
            (items.len() == 5 && items.iter().all(|i| i["status"] == "confirmed")).then_some(all)
        })
        .await
        .expect("the read model never caught up");
        let first = &all["items"][4];
        assert_eq!(first["id"], ids[4].as_str());
        assert_eq!(
            first["total"],
            serde_json::json!({"amount_minor": 1299 + 500, "currency": "USD"})
        );
        assert_eq!(first["item_count"], 2);
        assert_eq!(first["payment"]["status"], "captured");
        assert_eq!(first["shipment"]["status"], "none");
        assert_eq!(first["status_reason"], Value::Null);
        let full = app.order(&user, &ids[4]).await;
        assert_eq!(first["created_at"], full["created_at"]);

        // Pages of two, newest first, each order exactly once.
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let q = match &cursor {
                None => "?limit=2".to_owned(),
                Some(c) => format!("?limit=2&cursor={c}"),
            };
            let page = list(&app, &user, &q).await;
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= 2);
            seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, ids);

        // Bad parameters.
        for q in ["?limit=0", "?limit=101", "?limit=abc", "?cursor=garbage"] {
            problem(
                app.get(&user, &format!("/api/v1/orders{q}")).await,
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
        let page = list(&app, &user, "?limit=1").await;
        let c = page["next_cursor"].as_str().unwrap();
        let mut tampered = c.to_owned().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        problem(
            app.get(&user, &format!("/api/v1/orders?cursor={tampered}"))
                .await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        // Another user's cursor is refused too.
        problem(
            app.get(&other, &format!("/api/v1/orders?cursor={c}")).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        // The other user sees only their own order.
        assert!(
            eventually(|| async {
                list(&app, &other, "").await["items"]
                    .as_array()
                    .unwrap()
                    .len()
                    == 1
            })
            .await
        );
    }
);
