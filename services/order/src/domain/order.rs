//! An order as the service keeps it.

use serde::{Deserialize, Serialize};

use super::{OrderStatus, PaymentStatus, ShipmentStatus, StatusReason};

/// An amount in minor units of an ISO 4217 currency (as the catalog priced it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// Minor units (cents).
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// One line of an order, priced when the order was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// The catalog product id.
    pub product_id: String,
    /// Its SKU (inventory holds stock by SKU).
    pub sku: String,
    /// Its name when ordered.
    pub name: String,
    /// Its price when ordered.
    pub unit_price: Money,
    /// Units, 1–100.
    pub quantity: i64,
    /// `unit_price × quantity`.
    pub line_total: Money,
}

/// Where an order goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
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
    /// ISO 3166-1 alpha-2 code.
    pub country: String,
}

/// One status an order went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The status.
    pub status: OrderStatus,
    /// Why, for rejections and cancellations.
    pub reason: Option<StatusReason>,
    /// When (µs since the epoch).
    pub at_us: i64,
}

/// An order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// UUIDv7.
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// Where it is.
    pub status: OrderStatus,
    /// Why it was rejected or cancelled.
    pub status_reason: Option<StatusReason>,
    /// Its lines.
    pub items: Vec<OrderLine>,
    /// The sum of the line totals.
    pub total: Money,
    /// Where it goes.
    pub shipping_address: Address,
    /// The card token to charge (never shown back).
    pub card_token: String,
    /// What is known of the payment.
    pub payment_status: PaymentStatus,
    /// What is known of the shipment.
    pub shipment_status: ShipmentStatus,
    /// The carrier's tracking number, once dispatched.
    pub tracking_number: Option<String>,
    /// A cancel (or an operator's abort) was accepted.
    pub cancel_requested: bool,
    /// Shipping claimed the order.
    pub shipment_claimed: bool,
    /// Its statuses, oldest first.
    pub history: Vec<HistoryEntry>,
    /// µs since the epoch.
    pub created_us: i64,
    /// µs since the epoch.
    pub updated_us: i64,
}

impl Order {
    /// The lines as events carry them.
    pub fn event_lines(&self) -> Vec<bazaar_contracts::events::OrderLineV1> {
        self.items
            .iter()
            .map(|l| bazaar_contracts::events::OrderLineV1 {
                product_id: l.product_id.clone(),
                sku: l.sku.clone(),
                name: l.name.clone(),
                unit_price: bazaar_contracts::events::MoneyV1 {
                    amount_minor: l.unit_price.amount_minor,
                    currency: l.unit_price.currency.clone(),
                },
                quantity: l.quantity,
            })
            .collect()
    }

    /// The total as events carry it.
    pub fn event_total(&self) -> bazaar_contracts::events::MoneyV1 {
        bazaar_contracts::events::MoneyV1 {
            amount_minor: self.total.amount_minor,
            currency: self.total.currency.clone(),
        }
    }

    /// The address as events carry it.
    pub fn event_address(&self) -> bazaar_contracts::events::AddressV1 {
        let a = &self.shipping_address;
        bazaar_contracts::events::AddressV1 {
            name: a.name.clone(),
            line1: a.line1.clone(),
            line2: a.line2.clone(),
            city: a.city.clone(),
            postal_code: a.postal_code.clone(),
            country: a.country.clone(),
        }
    }
}
