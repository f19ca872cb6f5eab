//! `GET /api/v1/admin/shipments`: who may read it, its parameters and its pages.

use std::{collections::HashSet, time::Duration};

use bazaar_runtime::time::now_micros;
use bazaar_shipping::{domain::OrderId, store::shipments};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{both, Shipping, World};

/// Inserts `n` shipments due in an hour (the worker leaves them alone).
async fn seed(world: &World, n: usize) -> Vec<String> {
    let db = world.db().await;
    let now = now_micros();
    let mut ids = Vec::new();
    let mut tx = db.begin().await.unwrap();
    for _ in 0..n {
        let order_id = uuid::Uuid::now_v7().to_string();
        shipments::insert_waiting(
            &mut tx,
            &shipments::NewShipment {
                order_id: OrderId::parse(&order_id).unwrap(),
                user_id: "u".into(),
                postal_code: "10115".into(),
                traceparent: None,
                now_us: now,
                due_us: now + 3_600_000_000,
            },
        )
        .await
        .unwrap();
        ids.push(order_id);
    }
    tx.commit().await.unwrap();
    ids
}

async fn status_of(world: &World, shipping: &Shipping, path: &str) -> StatusCode {
    world.admin_get(shipping, path).await.status()
}

both!(only_admins_may_list_shipments, |world| {
    let shipping = world.shipping(Duration::from_secs(60), "shipping-a").await;
    let path = shipping.url("/api/v1/admin/shipments");
    let res = world.client.get(&path).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let res = world
        .client
        .get(&path)
        .bearer_auth(world.token(&["customer"]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = world
        .client
        .get(&path)
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // The same list on the service's own operations path.
    let res = world.admin_get(&shipping, "/admin/shipments").await;
    assert_eq!(res.status(), StatusCode::OK);
    shipping.stop().await;
});

both!(bad_parameters_are_400, |world| {
    let shipping = world.shipping(Duration::from_secs(60), "shipping-a").await;
    for path in [
        "/api/v1/admin/shipments?limit=0",
        "/api/v1/admin/shipments?limit=101",
        "/api/v1/admin/shipments?limit=ten",
        "/api/v1/admin/shipments?status=lost",
        "/api/v1/admin/shipments?cursor=abc.def",
        "/api/v1/admin/shipments?order_id=has%20space",
    ] {
        let res = world.admin_get(&shipping, path).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body["type"], "urn:bazaar:problem:malformed-request",
            "{path}"
        );
    }
    // An unknown order has no shipment: an empty list, not an error.
    let res = world
        .admin_get(&shipping, "/api/v1/admin/shipments?order_id=nope")
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["items"], serde_json::json!([]));
    assert!(page["next_cursor"].is_null());
    shipping.stop().await;
});

both!(pages_list_every_shipment_once_newest_first, |world| {
    let shipping = world.shipping(Duration::from_secs(60), "shipping-a").await;
    let mut orders = seed(&world, 7).await;
    orders.reverse();
    let mut seen = Vec::new();
    let mut path = "/api/v1/admin/shipments?limit=3&status=waiting".to_owned();
    let mut cursors = Vec::new();
    loop {
        let page: Value = world
            .admin_get(&shipping, &path)
            .await
            .json()
            .await
            .unwrap();
        for s in page["items"].as_array().unwrap() {
            assert_eq!(s["status"], "waiting");
            seen.push(s["order_id"].as_str().unwrap().to_owned());
        }
        let Some(cursor) = page["next_cursor"].as_str() else {
            break;
        };
        cursors.push(cursor.to_owned());
        path = format!("/api/v1/admin/shipments?limit=3&status=waiting&cursor={cursor}");
    }
    assert_eq!(seen, orders, "newest first, each once");
    assert_eq!(cursors.len(), 2);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 7);

    // A cursor is bound to its status filter and cannot be altered.
    let other = format!("/api/v1/admin/shipments?limit=3&cursor={}", cursors[0]);
    assert_eq!(
        status_of(&world, &shipping, &other).await,
        StatusCode::BAD_REQUEST
    );
    let mut tampered = cursors[0].clone().into_bytes();
    tampered[2] = if tampered[2] == b'A' { b'B' } else { b'A' };
    let tampered = format!(
        "/api/v1/admin/shipments?limit=3&status=waiting&cursor={}",
        String::from_utf8(tampered).unwrap()
    );
    assert_eq!(
        status_of(&world, &shipping, &tampered).await,
        StatusCode::BAD_REQUEST
    );

    // Nothing is dispatched: filtering by it lists nothing.
    let page: Value = world
        .admin_get(&shipping, "/api/v1/admin/shipments?status=dispatched")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"], serde_json::json!([]));
    shipping.stop().await;
});
