//! The JSON shapes shipping answers with.

use bazaar_runtime::time::rfc3339_micros;
use serde::Serialize;

use crate::domain::Shipment;

/// A shipment as admins see it.
#[derive(Debug, Clone, Serialize)]
pub struct ShipmentView {
    /// UUIDv7.
    pub id: String,
    /// The order it ships.
    pub order_id: String,
    /// The order's owner.
    pub user_id: String,
    /// `waiting`, `claimed`, `dispatched`, `failed` or `not_claimed`.
    pub status: &'static str,
    /// The destination's postal code.
    pub postal_code: String,
    /// Set once dispatched.
    pub tracking_number: Option<String>,
    /// Why it failed or was not claimed.
    pub reason: Option<String>,
    /// The error of the last failed claim attempt.
    pub last_error: Option<String>,
    /// Claim attempts so far.
    pub attempts: i64,
    /// When the handling time is (was) over, RFC 3339.
    pub due_at: String,
    /// When a worker next tries, RFC 3339; `null` once the shipment is final.
    pub next_attempt_at: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// One page of shipments.
#[derive(Debug, Clone, Serialize)]
pub struct ShipmentPage {
    /// Newest first.
    pub items: Vec<ShipmentView>,
    /// The cursor of the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl From<&Shipment> for ShipmentView {
    fn from(s: &Shipment) -> Self {
        ShipmentView {
            id: s.id.to_string(),
            order_id: s.order_id.to_string(),
            user_id: s.user_id.clone(),
            status: s.status.as_str(),
            postal_code: s.postal_code.clone(),
            tracking_number: s.tracking_number.clone(),
            reason: s.reason.clone(),
            last_error: s.last_error.clone(),
            attempts: s.attempts,
            due_at: rfc3339_micros(s.due_us),
            next_attempt_at: s
                .status
                .is_open()
                .then(|| rfc3339_micros(s.next_attempt_us)),
            created_at: rfc3339_micros(s.created_us),
            updated_at: rfc3339_micros(s.updated_us),
        }
    }
}
