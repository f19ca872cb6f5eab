//! Notification's types and rules, free of I/O: what each event tells its user, and the
//! parameters of the list.

mod message;
mod notification;

pub use bazaar_runtime::page::{Limit, LimitError};
pub use message::{format_money, NewNotification};
pub use notification::{Kind, Notification, NotificationId, UnknownKind};
