//! Reading and writing notifications.

use anyhow::Context as _;
use bazaar_store::{Db, Tx};
use sqlx::{any::AnyRow, Row};

use crate::domain::{Kind, Limit, NewNotification, Notification, NotificationId};

const COLUMNS: &str = "id, user_id, kind, order_id, message, read, created_us";

/// One page of a user's notifications.
#[derive(Debug, Clone)]
pub struct Page {
    /// Newest first.
    pub items: Vec<Notification>,
    /// Whether more notifications follow the last item.
    pub has_more: bool,
}

/// Stores the notification of event `event_id` unless that event made one already; whether
/// it was stored. Runs in the caller's transaction (the consumer's, with the inbox record).
pub async fn insert(
    tx: &mut Tx,
    new: &NewNotification,
    event_id: &str,
    now_us: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO notifications (id, user_id, kind, order_id, message, read, created_us, event_id) \
         VALUES ($1, $2, $3, $4, $5, 0, $6, $7) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(NotificationId::generate().to_string())
    .bind(new.user_id.clone())
    .bind(new.kind.as_str())
    .bind(new.order_id.clone())
    .bind(new.message.clone())
    .bind(now_us)
    .bind(event_id.to_owned())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One page of `user_id`'s notifications, newest first, after `after` if given.
#[tracing::instrument(skip(db))]
pub async fn list(
    db: &Db,
    user_id: &str,
    after: Option<NotificationId>,
    limit: Limit,
) -> anyhow::Result<Page> {
    let (filter, after) = match after {
        Some(id) => (" AND id < $3", Some(id.to_string())),
        None => ("", None),
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM notifications WHERE user_id = $1{filter} ORDER BY id DESC LIMIT $2"
    );
    // One more than asked for tells whether a next page exists.
    let mut q = sqlx::query(&sql)
        .bind(user_id.to_owned())
        .bind(i64::from(limit.get()) + 1);
    if let Some(after) = after {
        q = q.bind(after);
    }
    let rows = q
        .fetch_all(db.reader())
        .await
        .context("list notifications")?;
    let n = usize::from(limit.get());
    let has_more = rows.len() > n;
    let items = rows
        .iter()
        .take(n)
        .map(decode)
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Page { items, has_more })
}

/// How many of `user_id`'s notifications are unread.
#[tracing::instrument(skip(db))]
pub async fn unread(db: &Db, user_id: &str) -> anyhow::Result<i64> {
    let row = sqlx::query("SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read = 0")
        .bind(user_id.to_owned())
        .fetch_one(db.reader())
        .await
        .context("count unread notifications")?;
    row.try_get::<i64, _>(0).context("unread count")
}

/// Marks notification `id` of `user_id` read; false if `user_id` has no such notification.
/// Marking a read notification again changes nothing and is true.
#[tracing::instrument(skip(db), fields(notification_id = %id))]
pub async fn mark_read(db: &Db, user_id: &str, id: NotificationId) -> anyhow::Result<bool> {
    let mut tx = db.begin().await.context("begin mark read")?;
    let done = sqlx::query("UPDATE notifications SET read = 1 WHERE id = $1 AND user_id = $2")
        .bind(id.to_string())
        .bind(user_id.to_owned())
        .execute(&mut *tx)
        .await
        .context("mark notification read")?;
    tx.commit().await.context("commit mark read")?;
    Ok(done.rows_affected() == 1)
}

fn decode(row: &AnyRow) -> anyhow::Result<Notification> {
    let text = |col: &str| -> anyhow::Result<String> {
        row.try_get::<String, _>(col)
            .with_context(|| format!("column {col}"))
    };
    let int = |col: &str| -> anyhow::Result<i64> {
        row.try_get::<i64, _>(col)
            .with_context(|| format!("column {col}"))
    };
    let id = text("id")?;
    let bad = |what: &str| anyhow::anyhow!("stored notification {id} has an invalid {what}");
    Ok(Notification {
        id: NotificationId::parse(&id).ok_or_else(|| bad("id"))?,
        user_id: text("user_id")?,
        kind: Kind::parse(&text("kind")?).map_err(|_| bad("kind"))?,
        order_id: row
            .try_get::<Option<String>, _>("order_id")
            .context("column order_id")?,
        message: text("message")?,
        read: int("read")? != 0,
        created_us: int("created_us")?,
    })
}
