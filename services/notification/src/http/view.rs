//! The JSON shapes notification answers with.

use bazaar_runtime::time::rfc3339_micros;
use serde::Serialize;

use crate::domain::Notification;

/// A notification as its owner sees it.
#[derive(Debug, Clone, Serialize)]
pub struct NotificationView {
    /// UUIDv7.
    pub id: String,
    /// `welcome`, `order_confirmed`, `order_rejected`, `order_cancelled` or `order_shipped`.
    pub kind: &'static str,
    /// The order it is about; `null` for a welcome.
    pub order_id: Option<String>,
    /// The text to show.
    pub message: String,
    /// Whether it was marked read.
    pub read: bool,
    /// RFC 3339 UTC.
    pub created_at: String,
}

/// One page of the caller's notifications.
#[derive(Debug, Clone, Serialize)]
pub struct NotificationPage {
    /// Newest first.
    pub items: Vec<NotificationView>,
    /// The cursor of the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    /// How many of the caller's notifications (all pages) are unread.
    pub unread: i64,
}

impl From<&Notification> for NotificationView {
    fn from(n: &Notification) -> Self {
        NotificationView {
            id: n.id.to_string(),
            kind: n.kind.as_str(),
            order_id: n.order_id.clone(),
            message: n.message.clone(),
            read: n.read,
            created_at: rfc3339_micros(n.created_us),
        }
    }
}
