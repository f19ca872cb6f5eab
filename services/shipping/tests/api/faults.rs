//! The order service down or failing, and a worker that died mid-shipment.

use std::time::Duration;

use bazaar_runtime::time::now_micros;
use bazaar_shipping::{domain::OrderId, store::shipments};

use crate::helpers::{both, confirmed, eventually, outbox, Answer};

both!(
    an_unreachable_order_service_is_retried_until_it_is_back,
    without_grpc,
    |world| {
        let shipping = world
            .shipping(Duration::from_millis(100), "shipping-a")
            .await;
        let order = confirmed("10115");
        world.order.publish(&order).await;

        // Nothing listens on order's gRPC port: attempts fail and are rescheduled.
        let retried = eventually("two failed claim attempts", || async {
            world
                .shipment(&shipping, &order.order_id)
                .await
                .filter(|s| s["attempts"].as_i64().unwrap() >= 2)
        })
        .await;
        assert_eq!(retried["status"], "waiting");
        assert!(
            retried["last_error"]
                .as_str()
                .unwrap()
                .contains("Unavailable"),
            "{retried}"
        );
        assert!(retried["next_attempt_at"].is_string());
        assert!(outbox(&world.db().await, &order.order_id).await.is_empty());

        world.order.start_grpc().await;
        let done = world
            .shipment_in(&shipping, &order.order_id, "dispatched")
            .await;
        assert!(done["last_error"].is_null(), "{done}");
        assert_eq!(world.order.calls(&order.order_id).len(), 1);
        let events = outbox(&world.db().await, &order.order_id).await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].0, "bazaar.shipping.dispatched.v1");
        shipping.stop().await;
    }
);

both!(
    failing_claims_are_retried_with_backoff_then_succeed,
    |world| {
        let shipping = world
            .shipping(Duration::from_millis(100), "shipping-a")
            .await;
        let order = confirmed("10115");
        world.order.answer(
            &order.order_id,
            &[
                Answer::Fail(tonic::Code::Unavailable),
                Answer::Fail(tonic::Code::DeadlineExceeded),
            ],
        );
        world.order.publish(&order).await;
        let done = world
            .shipment_in(&shipping, &order.order_id, "dispatched")
            .await;
        assert_eq!(done["attempts"], 3, "{done}");
        let calls = world.order.calls(&order.order_id);
        assert_eq!(calls.len(), 3);
        // Backoff: the retries are spaced, the second gap at least the first's minimum.
        assert!(calls[1].at_us - calls[0].at_us >= 100_000, "{calls:?}");
        assert!(calls[2].at_us - calls[1].at_us >= 200_000, "{calls:?}");
        assert_eq!(outbox(&world.db().await, &order.order_id).await.len(), 1);
        shipping.stop().await;
    }
);

both!(
    a_claim_granted_to_a_worker_that_died_is_claimed_again_and_shipped,
    |world| {
        // What a worker that died right after the order granted its claim leaves behind: a
        // `claimed` shipment, leased to it, one attempt counted, and no event.
        let db = world.db().await;
        let order = confirmed("10115");
        let order_id = OrderId::parse(&order.order_id).unwrap();
        let now = now_micros();
        let mut tx = db.begin().await.unwrap();
        shipments::insert_waiting(
            &mut tx,
            &shipments::NewShipment {
                order_id: order_id.clone(),
                user_id: order.user_id.clone(),
                postal_code: "10115".into(),
                traceparent: None,
                now_us: now,
                due_us: now,
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let dead = "dead-instance/0001";
        let leased = shipments::lease_due(&db, dead, now_micros(), now_micros() + 300_000, 10)
            .await
            .unwrap();
        assert_eq!(leased.len(), 1);
        assert!(shipments::mark_claimed(&db, &order_id, dead, now_micros())
            .await
            .unwrap());

        // A live instance takes over once the dead one's lease has run out.
        let shipping = world
            .shipping(Duration::from_millis(100), "shipping-b")
            .await;
        let done = world
            .shipment_in(&shipping, &order.order_id, "dispatched")
            .await;
        assert_eq!(done["attempts"], 2);
        let calls = world.order.calls(&order.order_id);
        assert_eq!(calls.len(), 1, "claimed again by the live instance");
        assert!(calls[0].at_us >= leased[0].updated_us + 300_000 - 1);
        assert_eq!(calls[0].shipment_id, done["id"].as_str().unwrap());
        let events = outbox(&db, &order.order_id).await;
        assert_eq!(events.len(), 1);

        // The dead worker, were it to wake up, can no longer change anything.
        let mut tx = db.begin().await.unwrap();
        let changed = shipments::finish(
            &mut tx,
            &order_id,
            dead,
            bazaar_shipping::domain::ShipmentStatus::Failed,
            None,
            Some("late"),
            now_micros(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert!(!changed);
        shipping.stop().await;
    }
);
