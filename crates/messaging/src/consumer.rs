//! Consuming: the inbox transaction around a handler, in-place retries, dead letters, and the
//! feeds consumer loop.
//!
//! One delivery = one transaction that inserts `(subscription, event id)` into the inbox,
//! runs the handler on the same transaction and (feeds) moves the subscription's cursor past
//! the event. The inbox row makes a redelivery a no-op; the single commit makes the handler's
//! effects, the inbox record and the cursor move happen together or not at all.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use bazaar_store::Tx;
use sqlx::Row;

use crate::{
    bus::Inner,
    config::Subscription,
    envelope::Envelope,
    feed::{FeedPage, FeedQuery},
    handler::{Handler, HandlerError},
    metrics::{self, Outcome},
};

/// Records `event_id` as processed by `subscription`; false when it already was, in which
/// case the row counts one more redelivery (`duplicates`) — durable, so `bazaar check` can
/// report how many deliveries the inbox absorbed across every instance and restart.
pub(crate) async fn inbox_insert(
    tx: &mut Tx,
    subscription: &str,
    event_id: &str,
) -> Result<bool, sqlx::Error> {
    let duplicates: i64 = sqlx::query_scalar(
        "INSERT INTO msg_inbox (subscription, event_id, processed_us) VALUES ($1, $2, $3) \
         ON CONFLICT (subscription, event_id) DO UPDATE SET duplicates = msg_inbox.duplicates + 1 \
         RETURNING duplicates",
    )
    .bind(subscription)
    .bind(event_id)
    .bind(bazaar_runtime::time::now_micros())
    .fetch_one(&mut **tx)
    .await?;
    Ok(duplicates == 0)
}

/// Moves the feed cursor of `subscription` forward to `pos` (never backwards).
pub(crate) async fn advance_cursor(
    tx: &mut Tx,
    subscription: &str,
    pos: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO msg_cursors (subscription, pos) VALUES ($1, $2) \
         ON CONFLICT (subscription) DO UPDATE SET pos = excluded.pos WHERE msg_cursors.pos < excluded.pos",
    )
    .bind(subscription)
    .bind(pos)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn read_cursor(inner: &Inner, subscription: &str) -> Result<i64, sqlx::Error> {
    Ok(
        sqlx::query("SELECT pos FROM msg_cursors WHERE subscription = $1")
            .bind(subscription)
            .fetch_optional(inner.db.reader())
            .await?
            .map(|r| r.try_get::<i64, _>(0))
            .transpose()?
            .unwrap_or(0),
    )
}

/// The result of one attempt at an event.
pub(crate) enum Attempt {
    /// Committed: processed, or a duplicate acknowledged.
    Done(Outcome),
    /// Rolled back.
    Failed(HandlerError),
}

/// One attempt: inbox insert + handler (+ cursor move to `cursor`) in one transaction.
pub(crate) async fn attempt(
    inner: &Inner,
    sub: &str,
    handler: &dyn Handler,
    env: &Envelope,
    cursor: Option<i64>,
) -> Attempt {
    match attempt_tx(inner, sub, handler, env, cursor).await {
        Ok(outcome) => Attempt::Done(outcome),
        Err(e) => Attempt::Failed(e),
    }
}

async fn attempt_tx(
    inner: &Inner,
    sub: &str,
    handler: &dyn Handler,
    env: &Envelope,
    cursor: Option<i64>,
) -> Result<Outcome, HandlerError> {
    let mut tx = inner.db.begin().await?;
    let fresh = inbox_insert(&mut tx, sub, &env.id).await?;
    if fresh {
        // An error drops `tx`, which rolls it back: none of the handler's writes survive.
        bazaar_runtime::context::scope(env.consumer_context(), handler.handle(&mut tx, env))
            .await?;
        bazaar_runtime::failpoint::hit_async("messaging.consumer.before_commit")
            .await
            .map_err(|e| HandlerError::Retry(e.into()))?;
    }
    if let Some(pos) = cursor {
        advance_cursor(&mut tx, sub, pos).await?;
    }
    tx.commit().await?;
    if fresh {
        // The handler may have published events of its own: send them on now rather than
        // at the relay's next poll.
        inner.relay_wake.notify_one();
    }
    Ok(if fresh {
        Outcome::Processed
    } else {
        Outcome::Duplicate
    })
}

/// What to write into a dead letter.
pub(crate) struct DeadLetter<'a> {
    pub(crate) subscription: &'a str,
    pub(crate) event_id: &'a str,
    pub(crate) ty: &'a str,
    pub(crate) envelope: &'a str,
    pub(crate) error: String,
    pub(crate) attempts: u32,
}

/// Stores a dead letter (once per subscription and event) and moves the cursor past it, in
/// one transaction.
pub(crate) async fn store_dead_letter(
    inner: &Inner,
    dl: &DeadLetter<'_>,
    cursor: Option<i64>,
) -> Result<(), sqlx::Error> {
    let now = bazaar_runtime::time::now_micros();
    let mut tx = inner.db.begin().await?;
    sqlx::query(
        "INSERT INTO msg_dead_letters \
         (id, subscription, event_id, type, envelope, error, attempts, created_us, status, updated_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'dead', $8) ON CONFLICT DO NOTHING",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(dl.subscription)
    .bind(dl.event_id)
    .bind(dl.ty)
    .bind(dl.envelope)
    .bind(truncate(&dl.error, 4000))
    .bind(i64::from(dl.attempts))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if let Some(pos) = cursor {
        advance_cursor(&mut tx, dl.subscription, pos).await?;
    }
    tx.commit().await?;
    refresh_dead_letter_gauge(inner, dl.subscription).await;
    Ok(())
}

/// Sets `bazaar_dead_letters` of `subscription` from the table.
pub(crate) async fn refresh_dead_letter_gauge(inner: &Inner, subscription: &str) {
    let count = sqlx::query(
        "SELECT COUNT(*) FROM msg_dead_letters WHERE subscription = $1 AND status = 'dead'",
    )
    .bind(subscription)
    .fetch_one(inner.db.reader())
    .await
    .and_then(|r| r.try_get::<i64, _>(0));
    match count {
        Ok(n) => metrics::dead_letters(inner.service, subscription, n),
        Err(e) => tracing::debug!(error = %e, "Could not count dead letters."),
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Sleeps `d`, or returns false at once when the bus stops.
pub(crate) async fn pause(inner: &Inner, d: Duration) -> bool {
    tokio::select! {
        () = inner.stop.cancelled() => false,
        () = tokio::time::sleep(d) => true,
    }
}

/// Delivers `env` to the handler until it is processed, found to be a duplicate or
/// dead-lettered, retrying in place (the subscription waits: order is kept). `None` when the
/// bus stopped first.
pub(crate) async fn deliver_with_retries(
    inner: &Inner,
    sub: &Subscription,
    handler: &dyn Handler,
    env: &Envelope,
    cursor: Option<i64>,
) -> Option<Outcome> {
    let policy = inner.config.retry;
    let mut tries = 0u32;
    loop {
        tries += 1;
        let err = match attempt(inner, sub.name, handler, env, cursor).await {
            Attempt::Done(outcome) => {
                metrics::handled(inner.service, sub.name, outcome);
                if outcome == Outcome::Duplicate {
                    tracing::debug!(subscription = sub.name, event_id = %env.id, "Duplicate event acknowledged.");
                }
                return Some(outcome);
            }
            Attempt::Failed(err) => err,
        };
        if err.is_permanent() || tries >= policy.attempts() {
            let dl = DeadLetter {
                subscription: sub.name,
                event_id: &env.id,
                ty: &env.ty,
                envelope: &env.to_json(),
                error: err.to_string(),
                attempts: tries,
            };
            if !store_until_done(inner, &dl, cursor).await {
                return None;
            }
            tracing::warn!(
                subscription = sub.name,
                event_id = %env.id,
                event_type = %env.ty,
                attempts = tries,
                error = %err,
                "Event dead-lettered."
            );
            metrics::handled(inner.service, sub.name, Outcome::DeadLettered);
            return Some(Outcome::DeadLettered);
        }
        metrics::handled(inner.service, sub.name, Outcome::Retried);
        let delay = policy.delay(tries);
        tracing::info!(
            subscription = sub.name,
            event_id = %env.id,
            attempt = tries,
            retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            error = %err,
            "Handler failed; retrying."
        );
        if !pause(inner, delay).await {
            return None;
        }
    }
}

/// Stores a dead letter, retrying while the database fails; false when the bus stopped.
pub(crate) async fn store_until_done(
    inner: &Inner,
    dl: &DeadLetter<'_>,
    cursor: Option<i64>,
) -> bool {
    loop {
        match store_dead_letter(inner, dl, cursor).await {
            Ok(()) => return true,
            Err(e) => {
                tracing::warn!(subscription = dl.subscription, event_id = dl.event_id, error = %e, "Could not store a dead letter; retrying.");
                if !pause(inner, Duration::from_secs(1)).await {
                    return false;
                }
            }
        }
    }
}

/// The feeds consumer of one subscription: pulls the producer's feed after its cursor and
/// delivers each event in order, until the bus stops.
pub(crate) async fn run_feed_consumer(
    inner: Arc<Inner>,
    sub: Subscription,
    handler: Arc<dyn Handler>,
) {
    refresh_dead_letter_gauge(&inner, sub.name).await;
    let mut down_since: Option<Instant> = None;
    let mut failures = 0u32;
    let mut holding = false;
    'feed: loop {
        if inner.stop.is_cancelled() {
            break;
        }
        // Replicas share the cursor; one of them at a time reads the feed. (The inbox would
        // make a second reader harmless, only wasteful.)
        match take_lease(&inner, sub.name).await {
            Ok(true) => {
                if !holding {
                    tracing::debug!(subscription = sub.name, instance = %inner.config.instance, "Holding the subscription lease.");
                    holding = true;
                }
            }
            Ok(false) => {
                if holding {
                    inner.set_lag(sub.name, None);
                }
                holding = false;
                if !pause(&inner, LEASE_RETRY).await {
                    break;
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(subscription = sub.name, error = %e, "Could not take the subscription lease.");
                if !pause(&inner, LEASE_RETRY).await {
                    break;
                }
                continue;
            }
        }
        let fetched = async {
            let cursor = read_cursor(&inner, sub.name)
                .await
                .context("read the cursor")?;
            let page = tokio::select! {
                () = inner.stop.cancelled() => return Ok(None),
                page = fetch_page(&inner, &sub, cursor) => page?,
            };
            anyhow::Ok(Some((cursor, page)))
        }
        .await;
        let (cursor, page) = match fetched {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => {
                failures = failures.saturating_add(1);
                if down_since.is_none() {
                    tracing::warn!(subscription = sub.name, producer = sub.producer, error = %format!("{e:#}"), "Cannot read the producer's feed; retrying until it answers.");
                    down_since = Some(Instant::now());
                } else {
                    tracing::debug!(subscription = sub.name, producer = sub.producer, error = %format!("{e:#}"), "The producer's feed still does not answer.");
                }
                let ceiling = inner.config.unreachable_backoff_max;
                let backoff = crate::config::RetryPolicy {
                    max_attempts: 1,
                    base: Duration::from_millis(100),
                    max: ceiling,
                }
                .delay(failures);
                if !pause(&inner, backoff).await {
                    break;
                }
                continue;
            }
        };
        if let Some(since) = down_since.take() {
            tracing::info!(
                subscription = sub.name,
                producer = sub.producer,
                down_for_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
                "The producer's feed answers again."
            );
        }
        failures = 0;
        inner.set_lag(sub.name, Some(page.head - cursor));
        let full = page.events.len() >= inner.config.feed_batch as usize;
        let mut last = cursor;
        for item in page.events {
            if inner.stop.is_cancelled() {
                break 'feed;
            }
            if item.pos <= last {
                continue;
            }
            if !deliver_item(&inner, &sub, handler.as_ref(), item.pos, item.event).await {
                break 'feed;
            }
            last = item.pos;
        }
        if !full && page.head > last {
            // Past the events this subscription does not take: the page held every one it does.
            match move_cursor(&inner, sub.name, page.head).await {
                Ok(()) => last = page.head,
                Err(e) => {
                    tracing::warn!(subscription = sub.name, error = %e, "Could not move the cursor.");
                }
            }
        }
        metrics::consumer_lag(inner.service, sub.name, page.head - last);
        inner.set_lag(sub.name, Some(page.head - last));
    }
    if holding {
        // Hand over at once instead of after the lease's time-out (a rolling restart).
        let _ = sqlx::query("DELETE FROM msg_leases WHERE subscription = $1 AND holder = $2")
            .bind(sub.name)
            .bind(&inner.config.instance)
            .execute(inner.db.writer())
            .await;
    }
    tracing::debug!(subscription = sub.name, "Consumer stopped.");
}

/// How often an instance that does not hold a subscription's lease tries again.
const LEASE_RETRY: Duration = Duration::from_secs(1);

/// Takes or renews this instance's lease on `subscription`; false while another live
/// instance holds it. A crashed holder's lease runs out after `lease_ttl`; a restarted one
/// (same instance id) takes its own back at once.
pub(crate) async fn take_lease(inner: &Inner, subscription: &str) -> Result<bool, sqlx::Error> {
    let now = bazaar_runtime::time::now_micros();
    let until = now + i64::try_from(inner.config.lease_ttl.as_micros()).unwrap_or(i64::MAX / 2);
    let done = sqlx::query(
        "INSERT INTO msg_leases (subscription, holder, until_us) VALUES ($1, $2, $3) \
         ON CONFLICT (subscription) DO UPDATE SET holder = excluded.holder, until_us = excluded.until_us \
         WHERE msg_leases.holder = excluded.holder OR msg_leases.until_us < $4",
    )
    .bind(subscription)
    .bind(&inner.config.instance)
    .bind(until)
    .bind(now)
    .execute(inner.db.writer())
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn move_cursor(inner: &Inner, subscription: &str, pos: i64) -> Result<(), sqlx::Error> {
    let mut tx = inner.db.begin().await?;
    advance_cursor(&mut tx, subscription, pos).await?;
    tx.commit().await
}

/// Delivers one feed event; false when the bus stopped.
async fn deliver_item(
    inner: &Inner,
    sub: &Subscription,
    handler: &dyn Handler,
    pos: i64,
    event: serde_json::Value,
) -> bool {
    let raw = event.to_string();
    match Envelope::from_value(event) {
        Ok(env) => {
            if !sub.types.is_empty() && !sub.types.contains(&env.ty.as_str()) {
                // The producer filters by type; this only guards against one that does not.
                return match move_cursor(inner, sub.name, pos).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(subscription = sub.name, error = %e, "Could not move the cursor.");
                        pause(inner, Duration::from_secs(1)).await
                    }
                };
            }
            deliver_with_retries(inner, sub, handler, &env, Some(pos))
                .await
                .is_some()
        }
        Err(e) => {
            // Not an envelope: no handler can take it, so it is dead-lettered as it came.
            let value: serde_json::Value = serde_json::from_str(&raw).unwrap_or_default();
            let event_id = value
                .get("id")
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map_or_else(|| format!("feed-pos-{pos}"), str::to_owned);
            let ty = value
                .get("type")
                .and_then(|v| v.as_str())
                .unwrap_or("unknown")
                .to_owned();
            let dl = DeadLetter {
                subscription: sub.name,
                event_id: &event_id,
                ty: &ty,
                envelope: &raw,
                error: e.to_string(),
                attempts: 1,
            };
            let stored = store_until_done(inner, &dl, Some(pos)).await;
            if stored {
                tracing::warn!(subscription = sub.name, pos, error = %e, "A feed event is not an envelope; dead-lettered.");
                metrics::handled(inner.service, sub.name, Outcome::DeadLettered);
            }
            stored
        }
    }
}

/// Reads one page of the producer's feed after `cursor` (long-polling).
async fn fetch_page(inner: &Inner, sub: &Subscription, cursor: i64) -> anyhow::Result<FeedPage> {
    let instances = inner.resolver.resolve(sub.producer).await;
    anyhow::ensure!(
        !instances.is_empty(),
        "no instance of {} is known",
        sub.producer
    );
    let instance = &instances[rand::random::<usize>() % instances.len()];
    let wait = inner.config.feed_wait.min(Duration::from_secs(u64::from(
        crate::feed::MAX_FEED_WAIT_SECS,
    )));
    let query = FeedQuery {
        after: cursor,
        limit: inner.config.feed_batch,
        wait: u32::try_from(wait.as_secs()).unwrap_or(crate::feed::MAX_FEED_WAIT_SECS),
        types: sub.types.iter().map(|t| (*t).to_owned()).collect(),
    };
    let url = format!(
        "http://{}/internal/events?{}",
        instance.http_addr,
        query.to_query_string()
    );
    let res = inner
        .http
        .get(&url)
        .timeout(wait + Duration::from_secs(10))
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = res.status();
    anyhow::ensure!(status.is_success(), "GET {url} answered {status}");
    let page: FeedPage = res
        .json()
        .await
        .with_context(|| format!("read the feed page of {url}"))?;
    Ok(page)
}
