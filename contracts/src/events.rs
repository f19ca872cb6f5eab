//! Event payloads, one type per event type and version.

use schemars::JsonSchema;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// A payload of one event type: its CloudEvents `type` and the `subject` it is about.
pub trait EventPayload: Serialize + DeserializeOwned + JsonSchema + Send + Sync + 'static {
    /// `bazaar.<service>.<event>.v<version>`.
    const TYPE: &'static str;
    /// The publishing service (`source` of the envelope).
    const SERVICE: &'static str;
    /// The id of what the event is about (the CloudEvents `subject`).
    fn subject(&self) -> String;
}

/// An amount of money in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MoneyV1 {
    /// Minor units (cents).
    pub amount_minor: i64,
    /// ISO 4217 code, e.g. `USD`.
    pub currency: String,
}

/// A quantity of one SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StockLineV1 {
    /// The stock-keeping unit.
    pub sku: String,
    /// Units, ≥ 1.
    pub quantity: i64,
}

/// One line of an order as events carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderLineV1 {
    /// The catalog product id.
    pub product_id: String,
    /// The product's SKU.
    pub sku: String,
    /// The product's name when ordered.
    pub name: String,
    /// The unit price when ordered.
    pub unit_price: MoneyV1,
    /// Units, 1–100.
    pub quantity: i64,
}

/// A shipping address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AddressV1 {
    /// Recipient.
    pub name: String,
    /// First line.
    pub line1: String,
    /// Second line.
    pub line2: Option<String>,
    /// City.
    pub city: String,
    /// Postal code.
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
}

macro_rules! payload {
    ($ty:ident, $service:literal, $event:literal, $subject:ident) => {
        impl EventPayload for $ty {
            const TYPE: &'static str = concat!("bazaar.", $service, ".", $event, ".v1");
            const SERVICE: &'static str = $service;
            fn subject(&self) -> String {
                self.$subject.clone()
            }
        }
    };
}

/// `bazaar.identity.user_registered.v1`: a user account was created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserRegisteredV1 {
    /// The new user's id.
    pub user_id: String,
    /// The user's display name.
    pub display_name: String,
}
payload!(UserRegisteredV1, "identity", "user_registered", user_id);

/// `bazaar.catalog.product_created.v1`: a product was added to the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProductCreatedV1 {
    /// The product id.
    pub product_id: String,
    /// Its SKU (inventory keys stock by SKU).
    pub sku: String,
    /// Its name.
    pub name: String,
    /// Its category slug.
    pub category: String,
    /// Its price.
    pub price: MoneyV1,
}
payload!(ProductCreatedV1, "catalog", "product_created", product_id);

/// `bazaar.catalog.product_updated.v1`: a product's name, description or price changed. The
/// payload carries the product's state after the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProductUpdatedV1 {
    /// The product id.
    pub product_id: String,
    /// Its SKU.
    pub sku: String,
    /// Its name now.
    pub name: String,
    /// Its price now.
    pub price: MoneyV1,
}
payload!(ProductUpdatedV1, "catalog", "product_updated", product_id);

/// `bazaar.inventory.level_changed.v1`: a SKU's stock levels changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LevelChangedV1 {
    /// The SKU.
    pub sku: String,
    /// Units in the warehouse, reserved ones included.
    pub on_hand: i64,
    /// Units held for orders.
    pub reserved: i64,
    /// `on_hand − reserved`.
    pub available: i64,
}
payload!(LevelChangedV1, "inventory", "level_changed", sku);

/// `bazaar.inventory.reserved.v1`: stock was held for an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StockReservedV1 {
    /// The order.
    pub order_id: String,
    /// What was held.
    pub lines: Vec<StockLineV1>,
}
payload!(StockReservedV1, "inventory", "reserved", order_id);

/// `bazaar.inventory.released.v1`: an order's reservation was given back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StockReleasedV1 {
    /// The order.
    pub order_id: String,
    /// What was given back (empty if the order held nothing).
    pub lines: Vec<StockLineV1>,
    /// Why, e.g. `payment_declined`, `customer_cancelled`, `shipment_failed`.
    pub reason: String,
}
payload!(StockReleasedV1, "inventory", "released", order_id);

/// `bazaar.inventory.committed.v1`: an order's reserved stock left the warehouse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StockCommittedV1 {
    /// The order.
    pub order_id: String,
    /// What left.
    pub lines: Vec<StockLineV1>,
}
payload!(StockCommittedV1, "inventory", "committed", order_id);

/// `bazaar.order.placed.v1`: an order was accepted for placement (status `pending`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderPlacedV1 {
    /// The order.
    pub order_id: String,
    /// Its owner.
    pub user_id: String,
    /// Its lines.
    pub items: Vec<OrderLineV1>,
    /// Its total.
    pub total: MoneyV1,
}
payload!(OrderPlacedV1, "order", "placed", order_id);

/// `bazaar.order.confirmed.v1`: stock is held and payment captured; ready to ship.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderConfirmedV1 {
    /// The order.
    pub order_id: String,
    /// Its owner.
    pub user_id: String,
    /// Its lines.
    pub items: Vec<OrderLineV1>,
    /// Its total.
    pub total: MoneyV1,
    /// Where it goes.
    pub shipping_address: AddressV1,
}
payload!(OrderConfirmedV1, "order", "confirmed", order_id);

/// `bazaar.order.rejected.v1`: the order could not be placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderRejectedV1 {
    /// The order.
    pub order_id: String,
    /// Its owner.
    pub user_id: String,
    /// `out_of_stock`, `payment_declined`, `payment_unavailable`, or `operator_aborted` (an
    /// operator aborted a stuck placement).
    pub reason: String,
}
payload!(OrderRejectedV1, "order", "rejected", order_id);

/// `bazaar.order.payment_pending.v1`: the payment provider is unavailable; the order waits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderPaymentPendingV1 {
    /// The order.
    pub order_id: String,
    /// Its owner.
    pub user_id: String,
}
payload!(OrderPaymentPendingV1, "order", "payment_pending", order_id);

/// `bazaar.order.cancelled.v1`: the order was cancelled and its compensation has finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderCancelledV1 {
    /// The order.
    pub order_id: String,
    /// Its owner.
    pub user_id: String,
    /// `customer_cancelled` or `shipment_failed`.
    pub reason: String,
}
payload!(OrderCancelledV1, "order", "cancelled", order_id);

/// `bazaar.order.shipped.v1`: the order left the warehouse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderShippedV1 {
    /// The order.
    pub order_id: String,
    /// Its owner.
    pub user_id: String,
    /// The carrier's tracking number.
    pub tracking_number: String,
}
payload!(OrderShippedV1, "order", "shipped", order_id);

/// `bazaar.payment.captured.v1`: the order's card was charged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentCapturedV1 {
    /// The order.
    pub order_id: String,
    /// What was captured.
    pub amount: MoneyV1,
}
payload!(PaymentCapturedV1, "payment", "captured", order_id);

/// `bazaar.payment.declined.v1`: the processor declined the order's card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentDeclinedV1 {
    /// The order.
    pub order_id: String,
    /// The processor's reason code.
    pub reason: String,
}
payload!(PaymentDeclinedV1, "payment", "declined", order_id);

/// `bazaar.payment.refunded.v1`: the order's capture was refunded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentRefundedV1 {
    /// The order.
    pub order_id: String,
    /// What was refunded.
    pub amount: MoneyV1,
    /// Why, e.g. `customer_cancelled` or `shipment_failed`.
    pub reason: String,
}
payload!(PaymentRefundedV1, "payment", "refunded", order_id);

/// `bazaar.shipping.dispatched.v1`: the carrier took the order's parcel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ShipmentDispatchedV1 {
    /// The order.
    pub order_id: String,
    /// Its owner.
    pub user_id: String,
    /// The shipment.
    pub shipment_id: String,
    /// The carrier's tracking number.
    pub tracking_number: String,
}
payload!(ShipmentDispatchedV1, "shipping", "dispatched", order_id);

/// `bazaar.shipping.failed.v1`: the carrier refused the order's parcel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ShipmentFailedV1 {
    /// The order.
    pub order_id: String,
    /// Its owner.
    pub user_id: String,
    /// The shipment.
    pub shipment_id: String,
    /// Why, e.g. `carrier_rejected_postal_code`.
    pub reason: String,
}
payload!(ShipmentFailedV1, "shipping", "failed", order_id);

/// The JSON Schema of every payload type, by event type, in a stable order.
pub fn schemas() -> Vec<(&'static str, serde_json::Value)> {
    fn s<T: EventPayload>() -> (&'static str, serde_json::Value) {
        (
            T::TYPE,
            serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default(),
        )
    }
    vec![
        s::<UserRegisteredV1>(),
        s::<ProductCreatedV1>(),
        s::<ProductUpdatedV1>(),
        s::<LevelChangedV1>(),
        s::<StockReservedV1>(),
        s::<StockReleasedV1>(),
        s::<StockCommittedV1>(),
        s::<OrderPlacedV1>(),
        s::<OrderConfirmedV1>(),
        s::<OrderRejectedV1>(),
        s::<OrderPaymentPendingV1>(),
        s::<OrderCancelledV1>(),
        s::<OrderShippedV1>(),
        s::<PaymentCapturedV1>(),
        s::<PaymentDeclinedV1>(),
        s::<PaymentRefundedV1>(),
        s::<ShipmentDispatchedV1>(),
        s::<ShipmentFailedV1>(),
    ]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The committed `contracts/events/<type>.json` files are what the types say.
    #[test]
    fn committed_schemas_match_the_types() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
        let bless = std::env::var_os("BAZAAR_BLESS").is_some();
        for (ty, schema) in schemas() {
            let path = dir.join(format!("{ty}.json"));
            let want = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            if bless {
                std::fs::write(&path, &want).unwrap();
                continue;
            }
            let have = std::fs::read_to_string(&path).unwrap_or_else(|_| {
                panic!("{} is missing (run with BAZAAR_BLESS=1)", path.display())
            });
            assert_eq!(
                have,
                want,
                "{} is out of date (run with BAZAAR_BLESS=1)",
                path.display()
            );
        }
    }

    #[test]
    fn types_follow_the_naming_rule() {
        for (ty, _) in schemas() {
            let parts: Vec<&str> = ty.split('.').collect();
            assert_eq!(parts.len(), 4, "{ty}");
            assert_eq!(parts[0], "bazaar");
            assert_eq!(parts[3], "v1");
        }
    }

    #[test]
    fn an_event_round_trips_and_ignores_unknown_fields() {
        let v = serde_json::json!({"sku": "BK-1", "on_hand": 5, "reserved": 2, "available": 3, "later": true});
        let e: LevelChangedV1 = serde_json::from_value(v).unwrap();
        assert_eq!(e.subject(), "BK-1");
        assert_eq!(LevelChangedV1::TYPE, "bazaar.inventory.level_changed.v1");
        let back: LevelChangedV1 =
            serde_json::from_value(serde_json::to_value(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }
}
