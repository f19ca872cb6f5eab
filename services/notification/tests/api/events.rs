//! Events in, notifications out: one per event, with the right words.

use bazaar_contracts::events::{
    AddressV1, MoneyV1, OrderCancelledV1, OrderConfirmedV1, OrderLineV1, OrderPaymentPendingV1,
    OrderRejectedV1, OrderShippedV1, UserRegisteredV1,
};
use serde_json::Value;
use sqlx::Row;

use crate::helpers::{both, eventually, user};

fn confirmed(order_id: &str, user_id: &str) -> OrderConfirmedV1 {
    OrderConfirmedV1 {
        order_id: order_id.into(),
        user_id: user_id.into(),
        items: vec![OrderLineV1 {
            product_id: uuid::Uuid::now_v7().to_string(),
            sku: "BK-0001".into(),
            name: "A book".into(),
            unit_price: MoneyV1 {
                amount_minor: 1299,
                currency: "USD".into(),
            },
            quantity: 2,
        }],
        total: MoneyV1 {
            amount_minor: 2598,
            currency: "USD".into(),
        },
        shipping_address: AddressV1 {
            name: "Ada".into(),
            line1: "1 Way".into(),
            line2: None,
            city: "London".into(),
            postal_code: "N1".into(),
            country: "GB".into(),
        },
    }
}

fn kinds(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect()
}

both!(
    each_event_makes_one_notification_with_its_message,
    |world| {
        let ada = user();
        world
            .identity
            .publish(&UserRegisteredV1 {
                user_id: ada.clone(),
                display_name: "Ada Lovelace".into(),
            })
            .await;
        let page = world.wait_for(&ada, 1).await;
        let welcome = &page["items"][0];
        assert_eq!(welcome["kind"], "welcome");
        assert!(welcome["order_id"].is_null());
        assert_eq!(welcome["message"], "Welcome to Bazaar, Ada Lovelace!");
        assert_eq!(welcome["read"], false);
        assert!(welcome["created_at"].as_str().unwrap().ends_with('Z'));

        let (o1, o2, o3) = (
            uuid::Uuid::now_v7().to_string(),
            uuid::Uuid::now_v7().to_string(),
            uuid::Uuid::now_v7().to_string(),
        );
        world.order.publish(&confirmed(&o1, &ada)).await;
        world
            .order
            .publish(&OrderRejectedV1 {
                order_id: o2.clone(),
                user_id: ada.clone(),
                reason: "out_of_stock".into(),
            })
            .await;
        // An order event that is not one to notify about is passed over.
        world
            .order
            .publish(&OrderPaymentPendingV1 {
                order_id: o3.clone(),
                user_id: ada.clone(),
            })
            .await;
        world
            .order
            .publish(&OrderCancelledV1 {
                order_id: o3.clone(),
                user_id: ada.clone(),
                reason: "customer_cancelled".into(),
            })
            .await;
        world
            .order
            .publish(&OrderShippedV1 {
                order_id: o1.clone(),
                user_id: ada.clone(),
                tracking_number: "BZ0123456789AB".into(),
            })
            .await;

        let page = world.wait_for(&ada, 5).await;
        assert_eq!(
            kinds(&page),
            [
                "order_shipped",
                "order_cancelled",
                "order_rejected",
                "order_confirmed",
                "welcome"
            ],
            "newest first"
        );
        assert_eq!(page["unread"], 5);
        assert!(page["next_cursor"].is_null());
        let items = page["items"].as_array().unwrap();
        let (shipped, cancelled, rejected, confirmed) =
            (&items[0], &items[1], &items[2], &items[3]);
        assert_eq!(confirmed["order_id"], o1.as_str());
        let m = confirmed["message"].as_str().unwrap();
        assert!(
            m.contains(&o1)
                && m.contains("confirmed")
                && m.contains("25.98 USD")
                && m.contains("2 items"),
            "{m}"
        );
        assert_eq!(rejected["order_id"], o2.as_str());
        let m = rejected["message"].as_str().unwrap();
        assert!(
            m.contains(&o2) && m.contains("out of stock") && m.contains("out_of_stock"),
            "{m}"
        );
        assert_eq!(cancelled["order_id"], o3.as_str());
        let m = cancelled["message"].as_str().unwrap();
        assert!(
            m.contains(&o3) && m.contains("you cancelled it") && m.contains("customer_cancelled"),
            "{m}"
        );
        assert_eq!(shipped["order_id"], o1.as_str());
        let m = shipped["message"].as_str().unwrap();
        assert!(
            m.contains(&o1) && m.contains("shipped") && m.contains("BZ0123456789AB"),
            "{m}"
        );

        // Another user sees none of them.
        let other = world.get_json_as(&user(), "/api/v1/me/notifications").await;
        assert_eq!(other["items"], serde_json::json!([]));
        assert_eq!(other["unread"], 0);
    }
);

both!(redelivered_events_make_no_second_notification, |world| {
    let mut world = world;
    let ada = user();
    world
        .identity
        .publish(&UserRegisteredV1 {
            user_id: ada.clone(),
            display_name: "Ada".into(),
        })
        .await;
    let order_id = uuid::Uuid::now_v7().to_string();
    world.order.publish(&confirmed(&order_id, &ada)).await;
    world
        .order
        .publish(&OrderShippedV1 {
            order_id: order_id.clone(),
            user_id: ada.clone(),
            tracking_number: "BZ0000000000AA".into(),
        })
        .await;
    let before = world.wait_for(&ada, 3).await;

    // Lose both the consumers' positions and their inbox records, as a restore from an old
    // backup would: every event is delivered and handled again.
    world.app.stop().await;
    let db = world.db().await;
    sqlx::query("UPDATE msg_cursors SET pos = 0")
        .execute(db.writer())
        .await
        .unwrap();
    sqlx::query("DELETE FROM msg_inbox")
        .execute(db.writer())
        .await
        .unwrap();
    world.restart().await;
    eventually("all three events handled again", || async {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM msg_inbox")
            .fetch_one(db.reader())
            .await
            .unwrap()
            .get(0);
        (n == 3).then_some(())
    })
    .await;
    let after = world
        .get_json_as(&ada, "/api/v1/me/notifications?limit=100")
        .await;
    assert_eq!(
        after["items"], before["items"],
        "the same three notifications"
    );
    assert_eq!(after["unread"], 3);
    world.app.stop().await;
});

mod handler {
    use bazaar_contracts::events::{OrderShippedV1, UserRegisteredV1};
    use bazaar_messaging::{Envelope, Handler, HandlerError};
    use bazaar_notification::events::Notify;
    use sqlx::Row;

    use crate::helpers::{user, Backend, World};

    /// The consumer's handler itself, with real envelopes in real transactions.
    #[tokio::test]
    async fn the_same_event_twice_makes_one_notification_and_junk_is_permanent() {
        let world = World::new(Backend::Sqlite).await.unwrap();
        let db = world.db().await;
        let ada = user();
        let event = Envelope::new(&OrderShippedV1 {
            order_id: "o-1".into(),
            user_id: ada.clone(),
            tracking_number: "BZ1".into(),
        })
        .unwrap();
        for _ in 0..2 {
            let mut tx = db.begin().await.unwrap();
            Notify.handle(&mut tx, &event).await.unwrap();
            tx.commit().await.unwrap();
        }
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM notifications WHERE user_id = $1")
            .bind(ada.clone())
            .fetch_one(db.reader())
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1);

        for junk in [
            serde_json::json!({"order_id": "o-1"}),
            serde_json::json!({"order_id": "o-1", "user_id": " ", "tracking_number": "BZ1"}),
        ] {
            let mut bad = Envelope::new(&OrderShippedV1 {
                order_id: "o-1".into(),
                user_id: ada.clone(),
                tracking_number: "BZ1".into(),
            })
            .unwrap();
            bad.data = junk;
            let mut tx = db.begin().await.unwrap();
            let err = Notify.handle(&mut tx, &bad).await.unwrap_err();
            assert!(matches!(err, HandlerError::Permanent(_)), "{err:?}");
        }

        // A type it does not know is not an error: there is nothing to tell the user.
        let mut other = Envelope::new(&UserRegisteredV1 {
            user_id: ada.clone(),
            display_name: "Ada".into(),
        })
        .unwrap();
        other.ty = "bazaar.identity.user_renamed.v1".into();
        let mut tx = db.begin().await.unwrap();
        Notify.handle(&mut tx, &other).await.unwrap();
    }
}
