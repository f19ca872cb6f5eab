//! What each event tells its user.

use bazaar_contracts::events::{
    MoneyV1, OrderCancelledV1, OrderConfirmedV1, OrderRejectedV1, OrderShippedV1, UserRegisteredV1,
};

use super::Kind;

/// A notification to create for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    /// Whose it is.
    pub user_id: String,
    /// What it is about.
    pub kind: Kind,
    /// The order it is about, if any.
    pub order_id: Option<String>,
    /// The text shown to the user.
    pub message: String,
}

impl NewNotification {
    /// The welcome of a new user.
    pub fn welcome(e: &UserRegisteredV1) -> NewNotification {
        let name = e.display_name.trim();
        let message = if name.is_empty() {
            "Welcome to Bazaar!".to_owned()
        } else {
            format!("Welcome to Bazaar, {name}!")
        };
        NewNotification {
            user_id: e.user_id.clone(),
            kind: Kind::Welcome,
            order_id: None,
            message,
        }
    }

    /// An order was confirmed.
    pub fn order_confirmed(e: &OrderConfirmedV1) -> NewNotification {
        let units: i64 = e.items.iter().map(|l| l.quantity).sum();
        let items = if units == 1 {
            "1 item".to_owned()
        } else {
            format!("{units} items")
        };
        NewNotification {
            user_id: e.user_id.clone(),
            kind: Kind::OrderConfirmed,
            order_id: Some(e.order_id.clone()),
            message: format!(
                "Your order {} is confirmed: {items}, {} in total. We will tell you when it ships.",
                e.order_id,
                format_money(&e.total)
            ),
        }
    }

    /// An order could not be placed.
    pub fn order_rejected(e: &OrderRejectedV1) -> NewNotification {
        let why = match e.reason.as_str() {
            "out_of_stock" => "an item is out of stock".to_owned(),
            "payment_declined" => "your payment was declined".to_owned(),
            "payment_unavailable" => "your payment could not be processed in time".to_owned(),
            other => humanize(other),
        };
        NewNotification {
            user_id: e.user_id.clone(),
            kind: Kind::OrderRejected,
            order_id: Some(e.order_id.clone()),
            message: format!(
                "Your order {} could not be placed: {why} ({}). You have not been charged.",
                e.order_id, e.reason
            ),
        }
    }

    /// An order was cancelled.
    pub fn order_cancelled(e: &OrderCancelledV1) -> NewNotification {
        let why = match e.reason.as_str() {
            "customer_cancelled" => "you cancelled it".to_owned(),
            "shipment_failed" => "the carrier could not ship it".to_owned(),
            other => humanize(other),
        };
        NewNotification {
            user_id: e.user_id.clone(),
            kind: Kind::OrderCancelled,
            order_id: Some(e.order_id.clone()),
            message: format!(
                "Your order {} was cancelled: {why} ({}). Any payment is refunded.",
                e.order_id, e.reason
            ),
        }
    }

    /// An order left the warehouse.
    pub fn order_shipped(e: &OrderShippedV1) -> NewNotification {
        NewNotification {
            user_id: e.user_id.clone(),
            kind: Kind::OrderShipped,
            order_id: Some(e.order_id.clone()),
            message: format!(
                "Your order {} has shipped. Tracking number: {}.",
                e.order_id, e.tracking_number
            ),
        }
    }
}

/// A reason code as words: `address_unknown` → `address unknown`.
fn humanize(code: &str) -> String {
    code.replace('_', " ")
}

/// An amount for people: `2598 USD` → `25.98 USD`, `500 JPY` → `500 JPY`.
pub fn format_money(m: &MoneyV1) -> String {
    // ISO 4217 currencies without minor units that a shop is likely to meet.
    const ZERO_DECIMALS: &[&str] = &["JPY", "KRW", "CLP", "ISK", "VND", "HUF"];
    if ZERO_DECIMALS.contains(&m.currency.as_str()) {
        return format!("{} {}", m.amount_minor, m.currency);
    }
    let sign = if m.amount_minor < 0 { "-" } else { "" };
    let abs = m.amount_minor.unsigned_abs();
    format!("{sign}{}.{:02} {}", abs / 100, abs % 100, m.currency)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn money(amount_minor: i64, currency: &str) -> MoneyV1 {
        MoneyV1 {
            amount_minor,
            currency: currency.into(),
        }
    }

    #[test]
    fn formats_money_with_its_minor_units() {
        assert_eq!(format_money(&money(2598, "USD")), "25.98 USD");
        assert_eq!(format_money(&money(5, "EUR")), "0.05 EUR");
        assert_eq!(format_money(&money(-150, "EUR")), "-1.50 EUR");
        assert_eq!(format_money(&money(500, "JPY")), "500 JPY");
    }

    #[test]
    fn rejections_and_cancellations_say_why() {
        let r = NewNotification::order_rejected(&OrderRejectedV1 {
            order_id: "o1".into(),
            user_id: "u1".into(),
            reason: "out_of_stock".into(),
        });
        assert_eq!(r.kind, Kind::OrderRejected);
        assert!(r.message.contains("out of stock"), "{}", r.message);
        assert!(r.message.contains("o1"));
        let c = NewNotification::order_cancelled(&OrderCancelledV1 {
            order_id: "o1".into(),
            user_id: "u1".into(),
            reason: "something_new".into(),
        });
        assert!(c.message.contains("something new"), "{}", c.message);
    }

    #[test]
    fn a_welcome_has_no_order_and_names_the_user() {
        let w = NewNotification::welcome(&UserRegisteredV1 {
            user_id: "u1".into(),
            display_name: " Ada ".into(),
        });
        assert_eq!(w.order_id, None);
        assert_eq!(w.message, "Welcome to Bazaar, Ada!");
    }
}
