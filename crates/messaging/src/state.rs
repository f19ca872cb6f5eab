//! The messaging part of a service's state, for consistency checks after a chaos run:
//! [`crate::Bus::state_summary`] builds it (every service's `GET /admin/state` embeds it as
//! `"messaging"`), and [`crate::Bus::routes`] serves it alone at `GET /admin/messaging`.

use std::{collections::BTreeMap, sync::Arc};

use axum::extract::State;
use bazaar_runtime::{AdminUser, Json, Problem};
use bazaar_store::{Backend, Db, Tx};
use futures::TryStreamExt as _;
use serde::{Deserialize, Serialize};
use sqlx::{any::AnyRow, AnyConnection, Row};

use crate::bus::Inner;

/// What a service's messaging tables hold, as `GET /admin/messaging` and the `"messaging"`
/// field of `GET /admin/state` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagingSummary {
    /// Outbox rows the relay has not made deliverable yet (no feed position; with JetStream,
    /// not yet acknowledged by the broker).
    pub outbox_unsent: i64,
    /// How long ago the oldest unsent outbox row was written, in milliseconds; `null` when
    /// nothing is unsent.
    pub outbox_oldest_unsent_age_ms: Option<i64>,
    /// Events recorded as processed in the inbox (rows of `msg_inbox`, every subscription).
    pub inbox_processed: i64,
    /// Deliveries of events the inbox already held, acknowledged without effect (every
    /// subscription, every instance, since the database was created).
    #[serde(default)]
    pub inbox_duplicates: i64,
    /// Dead letters not redriven yet (status `dead`).
    pub dead_letters: i64,
    /// Every dead letter ever stored, redriven ones included.
    pub dead_letters_total: i64,
    /// The subscriptions this instance runs or that have a stored feed cursor, by name.
    pub subscriptions: Vec<SubscriptionState>,
}

/// One subscription of a consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionState {
    /// The subscription's name (e.g. `inventory.products`).
    pub subscription: String,
    /// The feed position consumed up to; `null` when none is stored (nothing consumed yet
    /// over feeds, or the JetStream backend, whose durable consumer keeps the position).
    pub cursor: Option<i64>,
    /// Events waiting for this subscription: as the broker counts them (JetStream), or as
    /// this instance saw at its last feed page (feeds; `null` while another replica reads it).
    #[serde(default)]
    pub lag: Option<i64>,
}

/// Starts a read-only transaction on `db`'s reader pool that sees one snapshot of the
/// database (a read transaction on SQLite, `REPEATABLE READ` on PostgreSQL), so that every
/// part of a state answer read through it is consistent with the others.
pub async fn read_snapshot(db: &Db) -> Result<Tx, sqlx::Error> {
    let mut tx = db.reader().begin().await?;
    if db.backend() == Backend::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
    }
    Ok(tx)
}

/// Runs `sql` (no parameters) through `conn` and decodes each row with `decode` as it
/// streams in: how a state endpoint reads a whole table without paging.
pub async fn read_rows<T>(
    conn: &mut AnyConnection,
    sql: &str,
    decode: impl Fn(&AnyRow) -> Result<T, sqlx::Error>,
) -> Result<Vec<T>, sqlx::Error> {
    let mut rows = sqlx::query(sql).fetch(conn);
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await? {
        out.push(decode(&row)?);
    }
    Ok(out)
}

/// Reads the summary through `conn` (typically a [`read_snapshot`]).
pub(crate) async fn summary(
    inner: &Inner,
    conn: &mut AnyConnection,
) -> Result<MessagingSummary, sqlx::Error> {
    let outbox = sqlx::query("SELECT COUNT(*), MIN(created_us) FROM msg_outbox WHERE pos IS NULL")
        .fetch_one(&mut *conn)
        .await?;
    let outbox_unsent: i64 = outbox.try_get(0)?;
    let oldest: Option<i64> = outbox.try_get(1)?;
    let outbox_oldest_unsent_age_ms =
        oldest.map(|created| ((bazaar_runtime::time::now_micros() - created) / 1000).max(0));
    let inbox =
        sqlx::query("SELECT COUNT(*), CAST(COALESCE(SUM(duplicates), 0) AS BIGINT) FROM msg_inbox")
            .fetch_one(&mut *conn)
            .await?;
    let inbox_processed: i64 = inbox.try_get(0)?;
    let inbox_duplicates: i64 = inbox.try_get(1)?;
    let dead_letters_total: i64 = sqlx::query("SELECT COUNT(*) FROM msg_dead_letters")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    let dead_letters: i64 = sqlx::query("SELECT COUNT(*) FROM msg_dead_letters WHERE status = $1")
        .bind("dead")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;

    let mut cursors: BTreeMap<String, Option<i64>> = inner
        .handlers
        .read()
        .map(|h| h.keys().map(|k| ((*k).to_owned(), None)).collect())
        .unwrap_or_default();
    for row in sqlx::query("SELECT subscription, pos FROM msg_cursors")
        .fetch_all(&mut *conn)
        .await?
    {
        cursors.insert(row.try_get(0)?, Some(row.try_get(1)?));
    }
    let producers: Vec<(&'static str, &'static str)> = inner
        .producers
        .read()
        .map(|p| p.iter().map(|(s, p)| (*s, *p)).collect())
        .unwrap_or_default();
    let mut lags: BTreeMap<String, i64> = BTreeMap::new();
    match &inner.nats {
        Some(nats) => {
            for (sub, producer) in producers {
                if let Some(n) = nats.lag(&inner.config, producer, sub).await {
                    lags.insert(sub.to_owned(), n);
                }
            }
        }
        None => {
            let known = inner.lags.lock().unwrap_or_else(|e| e.into_inner());
            lags.extend(known.iter().map(|(s, n)| ((*s).to_owned(), *n)));
        }
    }
    Ok(MessagingSummary {
        outbox_unsent,
        outbox_oldest_unsent_age_ms,
        inbox_processed,
        inbox_duplicates,
        dead_letters,
        dead_letters_total,
        subscriptions: cursors
            .into_iter()
            .map(|(subscription, cursor)| SubscriptionState {
                lag: lags.get(&subscription).copied(),
                subscription,
                cursor,
            })
            .collect(),
    })
}

/// `GET /admin/messaging`: the [`MessagingSummary`] of this service (admin token required).
pub(crate) async fn serve(
    State(inner): State<Arc<Inner>>,
    _admin: AdminUser,
) -> Result<Json<MessagingSummary>, Problem> {
    let mut tx = read_snapshot(&inner.db)
        .await
        .map_err(|e| Problem::internal(&e))?;
    let summary = summary(&inner, &mut tx)
        .await
        .map_err(|e| Problem::internal(&e))?;
    tx.rollback().await.map_err(|e| Problem::internal(&e))?;
    Ok(Json(summary))
}
