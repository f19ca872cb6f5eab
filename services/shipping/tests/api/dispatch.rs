//! The happy path and the carrier's and order's refusals.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    both, confirmed, eventually, inbox_count, is_tracking_number, micros, outbox, Answer,
};

both!(
    dispatches_a_confirmed_order_after_its_handling_time,
    |world| {
        let shipping = world.shipping(Duration::from_secs(2), "shipping-a").await;
        let order = confirmed("10115");
        world.order.publish(&order).await;

        // The shipment waits first: it exists before the order has been asked for it.
        let waiting = world
            .shipment_in(&shipping, &order.order_id, "waiting")
            .await;
        assert_eq!(waiting["user_id"], order.user_id.as_str());
        assert_eq!(waiting["postal_code"], "10115");
        assert!(waiting["tracking_number"].is_null());
        let due = micros(&waiting["due_at"]);
        assert!(
            due >= micros(&waiting["created_at"]) + 2_000_000,
            "{waiting}"
        );

        let done = world
            .shipment_in(&shipping, &order.order_id, "dispatched")
            .await;
        assert_eq!(done["id"], waiting["id"], "the same shipment");
        let tracking = done["tracking_number"].as_str().unwrap();
        assert!(is_tracking_number(tracking), "{tracking}");
        assert!(done["reason"].is_null());
        assert!(done["next_attempt_at"].is_null());

        // Claimed exactly once, with the shipment's id, and not before it was due.
        let calls = world.order.calls(&order.order_id);
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert_eq!(calls[0].shipment_id, done["id"].as_str().unwrap());
        assert!(
            calls[0].at_us >= due,
            "claimed {} µs before it was due",
            due - calls[0].at_us
        );

        // One dispatched event, in the same transaction as the status change.
        let db = world.db().await;
        let events = outbox(&db, &order.order_id).await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].0, "bazaar.shipping.dispatched.v1");
        let data = &events[0].1;
        assert_eq!(data["order_id"], order.order_id.as_str());
        assert_eq!(data["user_id"], order.user_id.as_str());
        assert_eq!(data["shipment_id"], done["id"]);
        assert_eq!(data["tracking_number"], tracking);

        // ... and it is served on shipping's feed.
        let feed: Value = eventually("the dispatched event on the feed", || async {
            let res = world
                .client
                .get(shipping.url("/internal/events?after=0&types=bazaar.shipping.dispatched.v1"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let page: Value = res.json().await.unwrap();
            (!page["events"].as_array().unwrap().is_empty()).then_some(page)
        })
        .await;
        let event = &feed["events"][0]["event"];
        assert_eq!(event["type"], "bazaar.shipping.dispatched.v1");
        assert_eq!(event["source"], "/bazaar/shipping");
        assert_eq!(event["subject"], order.order_id.as_str());
        assert_eq!(event["data"]["tracking_number"], tracking);
        shipping.stop().await;
    }
);

both!(
    the_carrier_refuses_postal_code_00000_and_a_failed_event_is_published,
    |world| {
        let shipping = world
            .shipping(Duration::from_millis(200), "shipping-a")
            .await;
        let order = confirmed("00000");
        world.order.publish(&order).await;
        let failed = world
            .shipment_in(&shipping, &order.order_id, "failed")
            .await;
        assert_eq!(failed["reason"], "carrier_rejected_postal_code");
        assert!(failed["tracking_number"].is_null());
        assert_eq!(world.order.calls(&order.order_id).len(), 1);

        let events = outbox(&world.db().await, &order.order_id).await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].0, "bazaar.shipping.failed.v1");
        assert_eq!(events[0].1["reason"], "carrier_rejected_postal_code");
        assert_eq!(events[0].1["shipment_id"], failed["id"]);
        assert_eq!(events[0].1["user_id"], order.user_id.as_str());
        shipping.stop().await;
    }
);

both!(
    a_refused_claim_ends_the_shipment_without_an_event,
    |world| {
        let shipping = world
            .shipping(Duration::from_millis(200), "shipping-a")
            .await;
        let order = confirmed("10115");
        world
            .order
            .answer(&order.order_id, &[Answer::Refuse("cancelling")]);
        world.order.publish(&order).await;
        let refused = world
            .shipment_in(&shipping, &order.order_id, "not_claimed")
            .await;
        assert_eq!(refused["reason"], "order_cancelling");
        assert!(refused["tracking_number"].is_null());
        assert!(refused["next_attempt_at"].is_null());
        assert!(outbox(&world.db().await, &order.order_id).await.is_empty());

        // A final shipment is never worked on again: a later order is, this one is not.
        let later = confirmed("10115");
        world.order.publish(&later).await;
        world
            .shipment_in(&shipping, &later.order_id, "dispatched")
            .await;
        assert_eq!(world.order.calls(&order.order_id).len(), 1);
        let still = world.shipment(&shipping, &order.order_id).await.unwrap();
        assert_eq!(still["status"], "not_claimed");
        assert_eq!(still["attempts"], 1);
        shipping.stop().await;
    }
);

both!(a_repeated_confirmation_creates_one_shipment, |world| {
    let shipping = world
        .shipping(Duration::from_millis(500), "shipping-a")
        .await;
    let order = confirmed("10115");
    // Two distinct events about the same order (a producer retry that published twice).
    world.order.publish(&order).await;
    world.order.publish(&order).await;
    let db = world.db().await;
    eventually("both confirmations consumed", || async {
        (inbox_count(&db).await == 2).then_some(())
    })
    .await;
    let done = world
        .shipment_in(&shipping, &order.order_id, "dispatched")
        .await;
    let all: Value = world
        .admin_get(&shipping, "/api/v1/admin/shipments")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 1, "{all}");
    assert_eq!(all["items"][0]["id"], done["id"]);
    assert_eq!(world.order.calls(&order.order_id).len(), 1);
    assert_eq!(outbox(&db, &order.order_id).await.len(), 1);
    shipping.stop().await;
});

both!(the_wait_survives_a_restart, |world| {
    let first = world.shipping(Duration::from_secs(3), "shipping-a").await;
    let order = confirmed("10115");
    world.order.publish(&order).await;
    let waiting = world.shipment_in(&first, &order.order_id, "waiting").await;
    first.stop().await;
    let stopped_at = bazaar_runtime::time::now_micros();
    assert!(
        world.order.calls(&order.order_id).is_empty(),
        "claimed before its handling time"
    );

    // A new instance on the same database (and a new handling time) finds the shipment
    // and ships it when it is due, not before.
    let second = world
        .shipping(Duration::from_secs(3600), "shipping-b")
        .await;
    let done = world
        .shipment_in(&second, &order.order_id, "dispatched")
        .await;
    assert_eq!(done["id"], waiting["id"]);
    assert_eq!(done["due_at"], waiting["due_at"]);
    let calls = world.order.calls(&order.order_id);
    assert_eq!(calls.len(), 1);
    assert!(calls[0].at_us >= micros(&waiting["due_at"]));
    assert!(calls[0].at_us >= stopped_at, "claimed by the new instance");
    second.stop().await;
});

mod handler {
    use std::time::Duration;

    use bazaar_messaging::{Envelope, Handler, HandlerError};
    use bazaar_shipping::events::OnOrderConfirmed;
    use sqlx::Row;

    use crate::helpers::{confirmed, World};

    /// The consumer's handler itself, called with real envelopes in real transactions: the
    /// same event twice, and another event about the same order, make one shipment.
    #[tokio::test]
    async fn the_handler_makes_one_shipment_per_order_whatever_it_is_given() {
        let world = World::without_grpc(crate::helpers::Backend::Sqlite)
            .await
            .unwrap();
        let db = world.db().await;
        let handler = OnOrderConfirmed {
            handling_time: Duration::from_secs(60),
        };
        let order = confirmed("10115");
        let first = Envelope::new(&order).unwrap();
        let second = Envelope::new(&order).unwrap();
        for env in [&first, &first, &second] {
            let mut tx = db.begin().await.unwrap();
            handler.handle(&mut tx, env).await.unwrap();
            tx.commit().await.unwrap();
        }
        let rows = sqlx::query(
            "SELECT status, due_us - created_us, traceparent FROM shipments WHERE order_id = $1",
        )
        .bind(order.order_id.clone())
        .fetch_all(db.reader())
        .await
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<String, _>(0), "waiting");
        assert_eq!(rows[0].get::<i64, _>(1), 60_000_000);

        // A payload that is not an order confirmation can never be applied.
        let mut junk = Envelope::new(&order).unwrap();
        junk.data = serde_json::json!({"order_id": 5});
        let mut tx = db.begin().await.unwrap();
        let err = handler.handle(&mut tx, &junk).await.unwrap_err();
        assert!(matches!(err, HandlerError::Permanent(_)), "{err:?}");
    }
}
