//! `GET /admin/state`: every shipment, for the consistency checker.

use std::time::Duration;

use bazaar_shipping::http::ShippingState;
use reqwest::StatusCode;

use crate::helpers::{both, confirmed, is_tracking_number};

both!(the_state_shows_every_shipment, |world| {
    let shipping = world
        .shipping(Duration::from_millis(100), "shipping-a")
        .await;
    let shipped = confirmed("10115");
    let refused = confirmed("00000");
    world.order.publish(&shipped).await;
    world.order.publish(&refused).await;
    world
        .shipment_in(&shipping, &shipped.order_id, "dispatched")
        .await;
    world
        .shipment_in(&shipping, &refused.order_id, "failed")
        .await;

    let res = world.admin_get(&shipping, "/admin/state").await;
    assert_eq!(res.status(), StatusCode::OK);
    let state: ShippingState = res.json().await.unwrap();
    assert_eq!(state.service, "shipping");
    assert_eq!(state.shipments.len(), 2);
    let find = |id: &str| state.shipments.iter().find(|s| s.order_id == id).unwrap();
    let s = find(&shipped.order_id);
    assert_eq!(s.status, "dispatched");
    assert!(
        s.tracking_number.as_deref().is_some_and(is_tracking_number),
        "{s:?}"
    );
    assert_eq!((s.reason.as_deref(), s.attempts), (None, 1));
    let s = find(&refused.order_id);
    assert_eq!(s.status, "failed");
    assert!(s.tracking_number.is_none());
    assert!(s.reason.is_some(), "{s:?}");
    // Both confirmations consumed through the feed.
    assert_eq!(state.messaging.inbox_processed, 2);
    assert_eq!(state.messaging.subscriptions.len(), 1);
    assert_eq!(
        state.messaging.subscriptions[0].subscription,
        "shipping.order_confirmed"
    );
    assert_eq!(state.messaging.subscriptions[0].cursor, Some(2));

    // Admins only.
    let res = world
        .client
        .get(shipping.url("/admin/state"))
        .bearer_auth(world.token(&["customer"]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    shipping.stop().await;
});
