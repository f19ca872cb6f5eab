//! `GET /admin/state`: every notification (without its text), for the consistency checker.

use bazaar_auth::Claims;
use bazaar_contracts::events::{OrderCancelledV1, UserRegisteredV1};
use bazaar_notification::http::{NotificationRecord, NotificationState};
use reqwest::StatusCode;

use crate::helpers::{both, eventually, user};

both!(the_state_lists_who_was_told_about_which_order, |world| {
    let ada = user();
    world
        .identity
        .publish(&UserRegisteredV1 {
            user_id: ada.clone(),
            display_name: "Ada".into(),
        })
        .await;
    let order_id = uuid::Uuid::now_v7().to_string();
    world
        .order
        .publish(&OrderCancelledV1 {
            order_id: order_id.clone(),
            user_id: ada.clone(),
            reason: "customer_cancelled".into(),
        })
        .await;
    world.wait_for(&ada, 2).await;

    let token = |roles: &[&str]| {
        let claims = Claims::new_access(
            &user(),
            roles.iter().map(|r| (*r).to_owned()).collect(),
            bazaar_auth::unix_now(),
        );
        world.key.sign(&claims).unwrap()
    };
    let admin = token(&["customer", "admin"]);
    let state: NotificationState = eventually("both events in the inbox", || async {
        let res = world
            .client
            .get(world.url("/admin/state"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let state: NotificationState = res.json().await.unwrap();
        (state.messaging.inbox_processed == 2).then_some(state)
    })
    .await;
    assert_eq!(state.service, "notification");
    // The two subscriptions run side by side: either may have been applied first.
    let mut notifications = state.notifications.clone();
    notifications.sort_by(|a, b| a.kind.cmp(&b.kind));
    assert_eq!(
        notifications,
        [
            NotificationRecord {
                order_id: Some(order_id),
                user_id: ada.clone(),
                kind: "order_cancelled".into(),
            },
            NotificationRecord {
                order_id: None,
                user_id: ada.clone(),
                kind: "welcome".into(),
            },
        ]
    );
    let subs: Vec<&str> = state
        .messaging
        .subscriptions
        .iter()
        .map(|s| s.subscription.as_str())
        .collect();
    assert_eq!(subs, ["notification.orders", "notification.users"]);

    // Admins only.
    let res = world
        .client
        .get(world.url("/admin/state"))
        .bearer_auth(token(&["customer"]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
});
