#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The `shipping.after_claim` failpoint (claim granted, not yet recorded) set to `error`, in
//! a test binary of its own: failpoints are read once per process.

#[path = "api/helpers.rs"]
#[allow(dead_code, unused_imports, unused_macros)]
mod helpers;

use std::time::Duration;

use helpers::{confirmed, eventually, outbox, Backend, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_claim_that_was_not_recorded_is_claimed_again_and_nothing_ships() {
    // Before anything reads the failpoint table.
    std::env::set_var("BAZAAR_FAILPOINTS", "shipping.after_claim=error");
    let world = World::new(Backend::Sqlite).await.unwrap();
    let shipping = world
        .shipping(Duration::from_millis(100), "shipping-a")
        .await;
    let order = confirmed("10115");
    world.order.publish(&order).await;
    let shipment = eventually("the claim granted three times", || async {
        let s = world.shipment(&shipping, &order.order_id).await?;
        (world.order.calls(&order.order_id).len() >= 3).then_some(s)
    })
    .await;
    // Each attempt was granted by order but lost before it was recorded: the shipment is
    // still open, claimed again on every attempt, and nothing was published.
    assert_eq!(shipment["status"], "waiting");
    assert!(
        shipment["last_error"]
            .as_str()
            .unwrap()
            .contains("shipping.after_claim"),
        "{shipment}"
    );
    let calls = world.order.calls(&order.order_id);
    assert!(calls.iter().all(|c| c.shipment_id == calls[0].shipment_id));
    assert!(outbox(&world.db().await, &order.order_id).await.is_empty());
    shipping.stop().await;
}
