//! The JSON shapes the order service answers with.

use bazaar_runtime::time::{now_micros, rfc3339_micros};
use serde::Serialize;

use crate::{
    domain::{Money, Order},
    store::{
        sagas::{LogEntry, SagaRow},
        views::ViewRow,
    },
};

/// Money as clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct MoneyView {
    /// Minor units (cents).
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
}

impl From<&Money> for MoneyView {
    fn from(m: &Money) -> Self {
        MoneyView {
            amount_minor: m.amount_minor,
            currency: m.currency.clone(),
        }
    }
}

/// An order line.
#[derive(Debug, Clone, Serialize)]
pub struct LineView {
    /// The catalog product id.
    pub product_id: String,
    /// Its SKU.
    pub sku: String,
    /// Its name when ordered.
    pub name: String,
    /// Its price when ordered.
    pub unit_price: MoneyView,
    /// Units.
    pub quantity: i64,
    /// `unit_price × quantity`.
    pub line_total: MoneyView,
}

/// A shipping address.
#[derive(Debug, Clone, Serialize)]
pub struct AddressView {
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
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

/// What is known of the payment.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentView {
    /// `none`, `pending`, `captured`, `declined` or `refunded`.
    pub status: String,
}

/// What is known of the shipment.
#[derive(Debug, Clone, Serialize)]
pub struct ShipmentView {
    /// `none`, `dispatched` or `failed`.
    pub status: String,
    /// The carrier's tracking number, once dispatched.
    pub tracking_number: Option<String>,
}

/// One status of the order's history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryView {
    /// The status.
    pub status: String,
    /// RFC 3339 UTC.
    pub at: String,
    /// Why (rejections and cancellations).
    pub reason: Option<String>,
}

/// An order as its owner sees it.
#[derive(Debug, Clone, Serialize)]
pub struct OrderView {
    /// UUIDv7.
    pub id: String,
    /// Its status.
    pub status: String,
    /// Why it was rejected or cancelled.
    pub status_reason: Option<String>,
    /// Its lines.
    pub items: Vec<LineView>,
    /// The sum of the line totals.
    pub total: MoneyView,
    /// Where it goes.
    pub shipping_address: AddressView,
    /// The payment.
    pub payment: PaymentView,
    /// The shipment.
    pub shipment: ShipmentView,
    /// Every status it went through, oldest first.
    pub history: Vec<HistoryView>,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC.
    pub updated_at: String,
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> Self {
        let a = &o.shipping_address;
        OrderView {
            id: o.id.clone(),
            status: o.status.as_str().to_owned(),
            status_reason: o.status_reason.map(|r| r.as_str().to_owned()),
            items: o
                .items
                .iter()
                .map(|l| LineView {
                    product_id: l.product_id.clone(),
                    sku: l.sku.clone(),
                    name: l.name.clone(),
                    unit_price: (&l.unit_price).into(),
                    quantity: l.quantity,
                    line_total: (&l.line_total).into(),
                })
                .collect(),
            total: (&o.total).into(),
            shipping_address: AddressView {
                name: a.name.clone(),
                line1: a.line1.clone(),
                line2: a.line2.clone(),
                city: a.city.clone(),
                postal_code: a.postal_code.clone(),
                country: a.country.clone(),
            },
            payment: PaymentView {
                status: o.payment_status.as_str().to_owned(),
            },
            shipment: ShipmentView {
                status: o.shipment_status.as_str().to_owned(),
                tracking_number: o.tracking_number.clone(),
            },
            history: o
                .history
                .iter()
                .map(|h| HistoryView {
                    status: h.status.as_str().to_owned(),
                    at: rfc3339_micros(h.at_us),
                    reason: h.reason.map(|r| r.as_str().to_owned()),
                })
                .collect(),
            created_at: rfc3339_micros(o.created_us),
            updated_at: rfc3339_micros(o.updated_us),
        }
    }
}

/// The shipment in a list entry.
#[derive(Debug, Clone, Serialize)]
pub struct ShipmentSummary {
    /// `none`, `dispatched` or `failed`.
    pub status: String,
}

/// An order in the caller's list (from the read model).
#[derive(Debug, Clone, Serialize)]
pub struct OrderSummary {
    /// UUIDv7.
    pub id: String,
    /// Its status.
    pub status: String,
    /// Why it was rejected or cancelled.
    pub status_reason: Option<String>,
    /// Its total.
    pub total: MoneyView,
    /// Units over all lines.
    pub item_count: i64,
    /// The payment.
    pub payment: PaymentView,
    /// The shipment.
    pub shipment: ShipmentSummary,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC.
    pub updated_at: String,
}

impl From<&ViewRow> for OrderSummary {
    fn from(v: &ViewRow) -> Self {
        OrderSummary {
            id: v.order_id.clone(),
            status: v.status.clone(),
            status_reason: v.status_reason.clone(),
            total: MoneyView {
                amount_minor: v.total_minor,
                currency: v.currency.clone(),
            },
            item_count: v.item_count,
            payment: PaymentView {
                status: v.payment_status.clone(),
            },
            shipment: ShipmentSummary {
                status: v.shipment_status.clone(),
            },
            created_at: rfc3339_micros(v.created_us),
            updated_at: rfc3339_micros(v.updated_us),
        }
    }
}

/// One page of the caller's orders.
#[derive(Debug, Clone, Serialize)]
pub struct OrderPage {
    /// Newest first.
    pub items: Vec<OrderSummary>,
    /// The next page's cursor; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// One line of a saga's log.
#[derive(Debug, Clone, Serialize)]
pub struct SagaLogView {
    /// RFC 3339 UTC.
    pub at: String,
    /// The step.
    pub step: String,
    /// What happened.
    pub outcome: String,
    /// More about it.
    pub detail: Option<String>,
}

/// A saga as operators see it.
#[derive(Debug, Clone, Serialize)]
pub struct SagaView {
    /// The order.
    pub order_id: String,
    /// The step it runs next (or ran last).
    pub step: String,
    /// `running`, `done`, `stuck` or `aborted`.
    pub status: String,
    /// Failed attempts of the step.
    pub attempts: i64,
    /// When the step is due, RFC 3339 UTC.
    pub next_attempt_at: String,
    /// The payment-pending deadline, if the order waits for the payment provider.
    pub deadline_at: Option<String>,
    /// The last failure.
    pub last_error: Option<String>,
    /// The order instance running its step right now (holding its lease), if any.
    pub held_by: Option<String>,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC.
    pub updated_at: String,
    /// What it did, oldest first (the newest 100 entries).
    pub log: Vec<SagaLogView>,
}

impl From<&SagaRow> for SagaView {
    fn from(s: &SagaRow) -> Self {
        SagaView {
            order_id: s.order_id.clone(),
            step: s.step.as_str().to_owned(),
            status: s.status.as_str().to_owned(),
            attempts: s.attempts,
            next_attempt_at: rfc3339_micros(s.next_attempt_us),
            deadline_at: s.deadline_us.map(rfc3339_micros),
            last_error: s.last_error.clone(),
            held_by: s.held_by(now_micros()).map(str::to_owned),
            created_at: rfc3339_micros(s.created_us),
            updated_at: rfc3339_micros(s.updated_us),
            log: s.log.iter().map(SagaLogView::from).collect(),
        }
    }
}

impl From<&LogEntry> for SagaLogView {
    fn from(l: &LogEntry) -> Self {
        SagaLogView {
            at: rfc3339_micros(l.at_us),
            step: l.step.clone(),
            outcome: l.outcome.clone(),
            detail: l.detail.clone(),
        }
    }
}

/// One page of sagas.
#[derive(Debug, Clone, Serialize)]
pub struct SagaPage {
    /// Newest order first.
    pub items: Vec<SagaView>,
    /// The next page's cursor; `null` on the last page.
    pub next_cursor: Option<String>,
}
