//! Events in: catalog prices, shipping outcomes, payment outcomes.

use bazaar_contracts::events::{
    MoneyV1, PaymentRefundedV1, ProductCreatedV1, ProductUpdatedV1, ShipmentDispatchedV1,
    ShipmentFailedV1,
};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{body, both, eventually, eventually_some, history, P1};

both!(catalog_events_fill_the_price_replica, |env| {
    let catalog = env.producer("catalog").await;
    let app = env.start("a").await;
    let user = app.customer();
    // A product only the events know of (the fake catalog's gRPC does not).
    let p3 = "01900000-0000-7000-8000-0000000000a3";
    catalog
        .publish(&ProductCreatedV1 {
            product_id: p3.into(),
            sku: "SKU-3".into(),
            name: "Grinder".into(),
            category: "kitchen".into(),
            price: MoneyV1 {
                amount_minor: 4200,
                currency: "USD".into(),
            },
        })
        .await;
    let b = body(&[(p3, 1)], "tok_visa");
    let placed: Value = eventually_some(|| async {
        let res = app
            .place_with(&user, Some(&uuid::Uuid::new_v4().to_string()), &b, &[])
            .await;
        if res.status() != StatusCode::CREATED {
            return None;
        }
        Some(res.json().await.unwrap())
    })
    .await
    .expect("the product's event never arrived");
    assert_eq!(placed["items"][0]["sku"], "SKU-3");
    assert_eq!(placed["total"]["amount_minor"], 4200);

    catalog
        .publish(&ProductUpdatedV1 {
            product_id: p3.into(),
            sku: "SKU-3".into(),
            name: "Burr grinder".into(),
            price: MoneyV1 {
                amount_minor: 3900,
                currency: "USD".into(),
            },
        })
        .await;
    assert!(
        eventually(|| async {
            let o = app.place_ok(&user, &b).await;
            o["total"]["amount_minor"] == 3900 && o["items"][0]["name"] == "Burr grinder"
        })
        .await
    );
    // Orders already placed keep their price.
    let first = app.order(&user, placed["id"].as_str().unwrap()).await;
    assert_eq!(first["total"]["amount_minor"], 4200);
});

both!(a_dispatch_ships_a_confirmed_order, |env| {
    let shipping = env.producer("shipping").await;
    let app = env.start("a").await;
    let user = app.customer();
    let order = app
        .place_with(
            &user,
            Some("k"),
            &body(&[(P1.0, 1)], "tok_visa"),
            &[("Prefer", "wait=20")],
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    let id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(order["status"], "confirmed");
    assert!(app.claim(&id).await.unwrap().0);
    shipping
        .publish(&ShipmentDispatchedV1 {
            order_id: id.clone(),
            user_id: user.id.clone(),
            shipment_id: "shp-1".into(),
            tracking_number: "TRACK-123".into(),
        })
        .await;
    let order = app.wait_status(&user, &id, "shipped").await;
    assert_eq!(order["shipment"]["status"], "dispatched");
    assert_eq!(order["shipment"]["tracking_number"], "TRACK-123");
    assert_eq!(history(&order), ["pending", "confirmed", "shipped"]);
    // The read model follows.
    assert!(
        eventually(|| async {
            let page: Value = app.get(&user, "/api/v1/orders").await.json().await.unwrap();
            page["items"][0]["status"] == "shipped"
                && page["items"][0]["shipment"]["status"] == "dispatched"
        })
        .await
    );
    // Shipped is final.
    let res = app
        .post(&user, &format!("/api/v1/orders/{id}/cancel"))
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
});

both!(a_failed_shipment_cancels_the_order, |env| {
    let shipping = env.producer("shipping").await;
    let payment = env.producer("payment").await;
    let app = env.start("a").await;
    let user = app.customer();
    let order = app
        .place_with(
            &user,
            Some("k"),
            &body(&[(P1.0, 1)], "tok_visa"),
            &[("Prefer", "wait=20")],
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    let id = order["id"].as_str().unwrap().to_owned();
    assert!(app.claim(&id).await.unwrap().0);
    shipping
        .publish(&ShipmentFailedV1 {
            order_id: id.clone(),
            user_id: user.id.clone(),
            shipment_id: "shp-1".into(),
            reason: "carrier_rejected_postal_code".into(),
        })
        .await;
    let order = app.wait_status(&user, &id, "cancelled").await;
    assert_eq!(order["status_reason"], "shipment_failed");
    assert_eq!(order["shipment"]["status"], "failed");
    // Payment refunds on its own from the same event; its event reaches the order.
    payment
        .publish(&PaymentRefundedV1 {
            order_id: id.clone(),
            amount: MoneyV1 {
                amount_minor: 1299,
                currency: "USD".into(),
            },
            reason: "shipment_failed".into(),
        })
        .await;
    assert!(
        eventually(|| async { app.order(&user, &id).await["payment"]["status"] == "refunded" })
            .await
    );
    assert!(
        eventually(|| async {
            let page: Value = app.get(&user, "/api/v1/orders").await.json().await.unwrap();
            let item = &page["items"][0];
            item["status"] == "cancelled"
                && item["payment"]["status"] == "refunded"
                && item["shipment"]["status"] == "failed"
        })
        .await
    );
    // The order service itself compensated nothing: inventory and payment do, from the event.
    assert_eq!(env.fakes.inventory.log.count(&id, "release"), 0);
    assert_eq!(env.fakes.payment.log.count(&id, "refund"), 0);
});
