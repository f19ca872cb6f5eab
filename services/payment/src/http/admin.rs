//! `GET /admin/payments`: one payment by order id, or all of them, paged.

use axum::extract::State;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use bazaar_runtime::{AdminUser, Json, Problem, Query};
use serde::{Deserialize, Serialize};

use super::AdminState;
use crate::{
    domain::OrderId,
    store::payments::{self, Payment},
};

/// The page size when none is asked for.
const DEFAULT_LIMIT: u16 = 20;
/// The largest page size.
const MAX_LIMIT: u16 = 100;

/// The query string, taken as text and parsed here (so every bad value is the same 400).
#[derive(Debug, Deserialize)]
pub(super) struct Params {
    order_id: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// One payment as operators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentItem {
    /// The order.
    pub order_id: String,
    /// What the processor captured.
    pub captured_minor: i64,
    /// What has been refunded.
    pub refunded_minor: i64,
    /// How many times the charge was sent to the processor.
    pub attempts: i64,
}

impl From<&Payment> for PaymentItem {
    fn from(p: &Payment) -> Self {
        PaymentItem {
            order_id: p.order_id.as_str().to_owned(),
            captured_minor: p.captured_minor,
            refunded_minor: p.refunded_minor,
            attempts: p.attempts,
        }
    }
}

/// A page of payments in order-id order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentPage {
    /// The payments.
    pub items: Vec<PaymentItem>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// The answer of `GET /admin/payments`: one payment, or a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PaymentsAnswer {
    /// With `order_id`.
    One(PaymentItem),
    /// Without.
    Page(PaymentPage),
}

/// `GET /admin/payments?order_id=` → one payment (404 if none); without `order_id` → a page.
pub(super) async fn payments(
    State(state): State<AdminState>,
    AdminUser(_): AdminUser,
    Query(params): Query<Params>,
) -> Result<Json<PaymentsAnswer>, Problem> {
    if let Some(id) = params.order_id.as_deref() {
        let id = OrderId::parse(id).map_err(|e| Problem::malformed(e.to_string()))?;
        let payment = payments::get(&state.db, &id)
            .await?
            .ok_or_else(Problem::not_found)?;
        return Ok(Json(PaymentsAnswer::One(PaymentItem::from(&payment))));
    }
    let limit = parse_limit(params.limit.as_deref())?;
    let after = match params.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => {
            Some(open_cursor(c).ok_or_else(|| Problem::malformed("The cursor is not valid."))?)
        }
    };
    let (items, has_more) = payments::list(&state.db, after.as_ref(), limit).await?;
    let next_cursor = match items.last() {
        Some(last) if has_more => Some(seal_cursor(&last.order_id)),
        _ => None,
    };
    let page = PaymentPage {
        items: items.iter().map(PaymentItem::from).collect(),
        next_cursor,
    };
    Ok(Json(PaymentsAnswer::Page(page)))
}

/// `limit`: digits only, 1–100; absent means 20.
fn parse_limit(s: Option<&str>) -> Result<u16, Problem> {
    let Some(s) = s else {
        return Ok(DEFAULT_LIMIT);
    };
    let bad = || Problem::malformed("limit must be a whole number from 1 to 100");
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    s.parse::<u16>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(bad)
}

/// The cursor after `last`: opaque to clients (base64url of the order id). Not signed: it
/// only says where to resume, and any valid order id is a harmless place to resume.
fn seal_cursor(last: &OrderId) -> String {
    URL_SAFE_NO_PAD.encode(last.as_str())
}

fn open_cursor(c: &str) -> Option<OrderId> {
    let bytes = URL_SAFE_NO_PAD.decode(c).ok()?;
    OrderId::parse(std::str::from_utf8(&bytes).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let id = OrderId::parse("0190-abc").ok();
        let sealed = id.as_ref().map(seal_cursor).unwrap_or_default();
        assert_eq!(open_cursor(&sealed), id);
        assert_eq!(open_cursor("!!!"), None);
        assert_eq!(open_cursor(&URL_SAFE_NO_PAD.encode("a/b")), None);
    }

    #[test]
    fn limits_are_one_to_a_hundred() {
        assert_eq!(parse_limit(None).ok(), Some(20));
        assert_eq!(parse_limit(Some("100")).ok(), Some(100));
        assert!(parse_limit(Some("0")).is_err());
        assert!(parse_limit(Some("101")).is_err());
        assert!(parse_limit(Some("+5")).is_err());
        assert!(parse_limit(Some("")).is_err());
    }
}
