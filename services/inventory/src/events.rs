//! What inventory publishes (through the outbox of the transaction that made the change)
//! and the events it consumes.
//!
//! Published: `bazaar.inventory.reserved.v1`, `released.v1`, `committed.v1` (one per
//! changing call) and `level_changed.v1` (one per SKU whose levels a change touched).
//! Consumed: the catalog's `product_created` (a stock record with nothing on hand) and the
//! shipping service's `dispatched` (commit the order's stock) and `failed` (release it).

mod consumers;

use bazaar_contracts::{events::LevelChangedV1, EventPayload};
use bazaar_store::Tx;

pub use consumers::{subscribe, ProductCreated, Shipments, PRODUCTS, SHIPMENTS};

use crate::domain::{Levels, Sku};

/// Appends `event` to the outbox of `tx` (the caller wakes the relay after committing).
pub(crate) async fn publish<E: EventPayload>(tx: &mut Tx, event: &E) -> Result<(), sqlx::Error> {
    bazaar_messaging::publish(tx, event).await.map(drop)
}

/// Publishes the levels of `sku` after a change.
pub(crate) async fn level_changed(
    tx: &mut Tx,
    sku: &Sku,
    levels: Levels,
) -> Result<(), sqlx::Error> {
    publish(
        tx,
        &LevelChangedV1 {
            sku: sku.as_str().to_owned(),
            on_hand: levels.on_hand,
            reserved: levels.reserved,
            available: levels.available(),
        },
    )
    .await
}
