//! The outbox relay: makes committed events deliverable, in commit order, whatever happened
//! to the process between the commit and now.
//!
//! Feeds: the relay gives every committed, unsent row the next feed position (`max(pos)+1…`,
//! ordered by `(created_us, id)`). Rows become visible to the relay only when their
//! transaction has committed, so positions follow commit order even where concurrent
//! transactions commit out of insertion order (PostgreSQL), and a consumer that has read up
//! to position `n` never sees a row appear below `n` later. On PostgreSQL the relay's
//! transaction holds an advisory lock: replicas sharing the database take turns instead of
//! handing out the same positions.
//!
//! JetStream: see [`crate::nats`]; the same loop, but each row is published (and acked by the
//! broker) before it gets its position.

use std::{sync::Arc, time::Duration};

use bazaar_store::{Backend, Db};
use sqlx::Row;

use crate::bus::Inner;

/// Rows assigned (or published) per relay transaction.
pub(crate) const RELAY_BATCH: i64 = 500;

/// The PostgreSQL advisory lock the relays of one database take turns on.
pub(crate) const RELAY_LOCK: i64 = 7_305_560;

/// The largest assigned feed position (0 when none).
pub(crate) async fn read_head(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COALESCE(MAX(pos), 0) FROM msg_outbox")
        .fetch_one(db.reader())
        .await?
        .try_get::<i64, _>(0)
}

/// Unsent rows and the creation time of the oldest.
pub(crate) async fn backlog(db: &Db) -> Result<(i64, Option<i64>), sqlx::Error> {
    let row = sqlx::query("SELECT COUNT(*), MIN(created_us) FROM msg_outbox WHERE pos IS NULL")
        .fetch_one(db.reader())
        .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

/// Runs the relay until the bus stops.
pub(crate) async fn run(inner: Arc<Inner>) {
    let mut failing = false;
    loop {
        if inner.stop.is_cancelled() {
            break;
        }
        let result = if inner.nats.is_some() {
            crate::nats::relay_batch(&inner).await
        } else {
            relay_batch(&inner).await
        };
        match result {
            Ok(moved) => {
                if failing {
                    tracing::info!(service = inner.service, "The outbox relay works again.");
                    failing = false;
                }
                if moved >= RELAY_BATCH {
                    // More may be waiting: go on at once.
                    continue;
                }
            }
            Err(e) => {
                if failing {
                    tracing::debug!(service = inner.service, error = %format!("{e:#}"), "The outbox relay still fails.");
                } else {
                    tracing::warn!(service = inner.service, error = %format!("{e:#}"), "The outbox relay failed; retrying.");
                    failing = true;
                }
            }
        }
        let pause = if failing {
            inner.config.relay_poll.max(Duration::from_secs(1))
        } else {
            inner.config.relay_poll
        };
        tokio::select! {
            () = inner.stop.cancelled() => break,
            () = inner.relay_wake.notified() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
    tracing::debug!(service = inner.service, "The outbox relay stopped.");
}

/// One feeds relay round: positions for up to [`RELAY_BATCH`] unsent rows, then metrics and
/// the head for long-polling feed requests. Returns how many rows got a position.
async fn relay_batch(inner: &Inner) -> anyhow::Result<i64> {
    let (unsent, _) = backlog(&inner.db).await?;
    let mut moved = 0;
    if unsent > 0 {
        bazaar_runtime::failpoint::hit_async("messaging.relay.before_assign").await?;
        let mut tx = inner.db.begin().await?;
        if inner.db.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(RELAY_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        let head: i64 = sqlx::query("SELECT COALESCE(MAX(pos), 0) FROM msg_outbox")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let ids: Vec<String> = sqlx::query(
            "SELECT id FROM msg_outbox WHERE pos IS NULL ORDER BY created_us, id LIMIT $1",
        )
        .bind(RELAY_BATCH)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?;
        for (i, id) in (1i64..).zip(&ids) {
            sqlx::query("UPDATE msg_outbox SET pos = $1 WHERE id = $2")
                .bind(head + i)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        moved = i64::try_from(ids.len()).unwrap_or(i64::MAX);
        if moved > 0 {
            tracing::debug!(
                service = inner.service,
                events = moved,
                head = head + moved,
                "Relayed events to the feed."
            );
        }
    }
    // Also picks up positions handed out by another replica's relay.
    let head = read_head(&inner.db).await?;
    inner.head.send_if_modified(|h| {
        if head > *h {
            *h = head;
            true
        } else {
            false
        }
    });
    record_backlog(inner).await?;
    Ok(moved)
}

/// Updates the outbox gauges.
pub(crate) async fn record_backlog(inner: &Inner) -> Result<(), sqlx::Error> {
    let (unsent, oldest) = backlog(&inner.db).await?;
    crate::metrics::outbox_backlog(inner.service, unsent);
    let age = oldest.map_or(0.0, |created| {
        let micros = (bazaar_runtime::time::now_micros() - created).max(0);
        Duration::from_micros(u64::try_from(micros).unwrap_or(0)).as_secs_f64()
    });
    crate::metrics::outbox_oldest_age(inner.service, age);
    Ok(())
}
