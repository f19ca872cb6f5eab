//! A notification and its kinds.

use std::fmt;

use uuid::Uuid;

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The user registered.
    Welcome,
    /// An order was confirmed.
    OrderConfirmed,
    /// An order could not be placed.
    OrderRejected,
    /// An order was cancelled.
    OrderCancelled,
    /// An order left the warehouse.
    OrderShipped,
}

/// A stored kind that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown notification kind {0:?}")]
pub struct UnknownKind(pub String);

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 5] = [
        Kind::Welcome,
        Kind::OrderConfirmed,
        Kind::OrderRejected,
        Kind::OrderCancelled,
        Kind::OrderShipped,
    ];

    /// The stable name stored in SQL and shown to clients.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Welcome => "welcome",
            Kind::OrderConfirmed => "order_confirmed",
            Kind::OrderRejected => "order_rejected",
            Kind::OrderCancelled => "order_cancelled",
            Kind::OrderShipped => "order_shipped",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Result<Kind, UnknownKind> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == name)
            .ok_or_else(|| UnknownKind(name.to_owned()))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A notification id: a UUIDv7, so ids sort by creation time (lists page on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NotificationId(Uuid);

impl NotificationId {
    /// A fresh, time-ordered id.
    pub fn generate() -> NotificationId {
        NotificationId(Uuid::now_v7())
    }

    /// Parses the canonical hyphenated form; `None` for anything else (a path id that is not
    /// a UUID is answered like an unknown notification).
    pub fn parse(input: &str) -> Option<NotificationId> {
        // Only the 36-character form: other spellings would not equal the stored text.
        if input.len() != 36 {
            return None;
        }
        Uuid::try_parse(input).ok().map(NotificationId)
    }
}

impl fmt::Display for NotificationId {
    /// Lower-case hyphenated, the form stored in SQL (so text order is time order).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

/// A notification as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Its id.
    pub id: NotificationId,
    /// Whose it is.
    pub user_id: String,
    /// What it is about.
    pub kind: Kind,
    /// The order it is about, if any.
    pub order_id: Option<String>,
    /// The text shown to the user.
    pub message: String,
    /// Whether the user marked it read.
    pub read: bool,
    /// When it was created (µs).
    pub created_us: i64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Ok(k));
        }
        assert!(Kind::parse("promo").is_err());
    }

    #[test]
    fn only_canonical_uuids_are_ids() {
        let id = NotificationId::generate();
        assert_eq!(NotificationId::parse(&id.to_string()), Some(id));
        assert_eq!(NotificationId::parse("nope"), None);
        let upper = id.to_string().to_uppercase();
        assert_eq!(
            NotificationId::parse(&upper).map(|i| i.to_string()),
            Some(id.to_string())
        );
        let simple = id.to_string().replace('-', "");
        assert_eq!(NotificationId::parse(&simple), None);
    }
}
