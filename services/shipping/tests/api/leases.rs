//! Several workers on one database: every shipment is worked on by one of them at a time.

use std::{collections::HashMap, time::Duration};

use bazaar_runtime::time::now_micros;
use bazaar_shipping::{domain::OrderId, store::shipments};

use crate::helpers::{both, confirmed, eventually, outbox};

both!(concurrent_leases_never_share_a_shipment, |world| {
    let db = world.db().await;
    let now = now_micros();
    let mut tx = db.begin().await.unwrap();
    for i in 0..120 {
        shipments::insert_waiting(
            &mut tx,
            &shipments::NewShipment {
                order_id: OrderId::parse(&format!("order-{i:03}")).unwrap(),
                user_id: "u".into(),
                postal_code: "10115".into(),
                traceparent: None,
                now_us: now,
                due_us: now,
            },
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    // Four workers lease small batches as fast as they can until nothing is left.
    let mut tasks = Vec::new();
    for w in 0..4 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("worker-{w}");
            let mut mine = Vec::new();
            loop {
                let t = now_micros();
                let got = shipments::lease_due(&db, &owner, t, t + 60_000_000, 7)
                    .await
                    .unwrap();
                if got.is_empty() {
                    break;
                }
                mine.extend(got.into_iter().map(|s| s.order_id.to_string()));
            }
            (owner, mine)
        }));
    }
    let mut leased_by: HashMap<String, Vec<String>> = HashMap::new();
    for t in tasks {
        let (owner, mine) = t.await.unwrap();
        for order in mine {
            leased_by.entry(order).or_default().push(owner.clone());
        }
    }
    assert_eq!(leased_by.len(), 120, "every due shipment was leased");
    let shared: Vec<_> = leased_by.iter().filter(|(_, o)| o.len() > 1).collect();
    assert!(shared.is_empty(), "leased twice: {shared:?}");
});

both!(
    two_instances_on_one_database_ship_each_order_exactly_once,
    |world| {
        let a = world
            .shipping(Duration::from_millis(300), "shipping-a")
            .await;
        let b = world
            .shipping(Duration::from_millis(300), "shipping-b")
            .await;
        let mut orders = Vec::new();
        for i in 0..30 {
            let order = confirmed(if i % 5 == 0 { "00000" } else { "10115" });
            world.order.publish(&order).await;
            orders.push(order);
        }
        let db = world.db().await;
        eventually("every shipment final", || async {
            let open: i64 = sqlx::Row::get(
                &sqlx::query(
                    "SELECT COUNT(*) FROM shipments WHERE status IN ('dispatched', 'failed')",
                )
                .fetch_one(db.reader())
                .await
                .unwrap(),
                0,
            );
            (open == 30).then_some(())
        })
        .await;
        for order in &orders {
            let calls = world.order.calls(&order.order_id);
            assert_eq!(calls.len(), 1, "{}: {calls:?}", order.order_id);
            let events = outbox(&db, &order.order_id).await;
            assert_eq!(events.len(), 1, "{}: {events:?}", order.order_id);
            let want = if order.shipping_address.postal_code == "00000" {
                "bazaar.shipping.failed.v1"
            } else {
                "bazaar.shipping.dispatched.v1"
            };
            assert_eq!(events[0].0, want);
        }
        // Both instances answer for the same shipments.
        let from_a = world.shipment(&a, &orders[0].order_id).await.unwrap();
        let from_b = world.shipment(&b, &orders[0].order_id).await.unwrap();
        assert_eq!(from_a, from_b);
        a.stop().await;
        b.stop().await;
    }
);
