//! The NATS JetStream backend.
//!
//! Each producing service has a stream `BAZAAR_<SERVICE>` capturing `bazaar.<service>.>`,
//! created (or updated) at start by the producer and by every consumer of it, so start order
//! does not matter. The relay publishes each unsent outbox row with `Nats-Msg-Id` = event id
//! and waits for the broker's ack before it marks the row sent: a crash in between republishes
//! the row, and the stream's duplicate window drops the copy.
//!
//! Each subscription is a durable pull consumer (explicit acks). A delivery runs the handler
//! and the inbox insert in one transaction and is acked only after that commit; a failure is
//! nak'ed with a delay from the [`crate::RetryPolicy`]; at the last attempt the event becomes a
//! dead letter and is acked. With `max_ack_pending` = 1 (the default) the consumer holds one
//! message at a time, so a subscription sees its events in stream order, as with feeds.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer::pull, stream, AckKind};
use bazaar_store::Backend;
use futures::StreamExt;
use sqlx::Row;

use crate::{
    bus::Inner,
    config::{BusConfig, Subscription},
    consumer::{attempt, pause, refresh_dead_letter_gauge, store_until_done, Attempt, DeadLetter},
    envelope::Envelope,
    handler::Handler,
    metrics::{self, Outcome},
    relay::{backlog, read_head, record_backlog, RELAY_BATCH, RELAY_LOCK},
};

/// The shortest duplicate window a stream gets.
const MIN_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// A JetStream connection.
pub(crate) struct Nats {
    js: jetstream::Context,
}

impl Nats {
    /// Connects and makes sure `service`'s own stream exists.
    pub(crate) async fn connect(
        url: &str,
        service: &'static str,
        config: &BusConfig,
    ) -> anyhow::Result<Nats> {
        let client = async_nats::ConnectOptions::new()
            .name(format!("bazaar-{service}"))
            .connect(url)
            .await
            .with_context(|| format!("connect to NATS at {url}"))?;
        let nats = Nats {
            js: jetstream::new(client),
        };
        nats.ensure_stream(service, config).await?;
        Ok(nats)
    }

    /// Messages of `producer`'s stream not yet acknowledged by the durable consumer of
    /// `subscription` (pending + delivered but unacknowledged), as the server counts them.
    pub(crate) async fn lag(
        &self,
        config: &BusConfig,
        producer: &str,
        subscription: &str,
    ) -> Option<i64> {
        let stream = self
            .js
            .get_stream(stream_name(&config.broker_name(producer)))
            .await
            .ok()?;
        let info = stream
            .consumer_info(durable_name(&config.broker_name(subscription)))
            .await
            .ok()?;
        i64::try_from(info.num_pending)
            .ok()?
            .checked_add(i64::try_from(info.num_ack_pending).ok()?)
    }

    /// Creates or updates the stream of `producer` (idempotent; replicas may race).
    async fn ensure_stream(
        &self,
        producer: &str,
        config: &BusConfig,
    ) -> anyhow::Result<stream::Stream<()>> {
        let producer = config.broker_name(producer);
        let name = stream_name(&producer);
        let cfg = stream::Config {
            name: name.clone(),
            subjects: vec![format!("bazaar.{producer}.>")],
            duplicate_window: config.duplicate_window.max(MIN_DUPLICATE_WINDOW),
            storage: stream::StorageType::File,
            ..Default::default()
        };
        if let Err(first) = self.js.create_or_update_stream(cfg.clone()).await {
            // Another instance may have created it between our update and create.
            self.js
                .create_or_update_stream(cfg)
                .await
                .map_err(|e| anyhow::anyhow!("{e} (first try: {first})"))
                .with_context(|| format!("create the JetStream stream {name}"))?;
        }
        Ok(self.js.get_stream_no_info(&name).await?)
    }
}

/// `BAZAAR_<SERVICE>`: upper case, anything but letters and digits as `_`.
pub(crate) fn stream_name(service: &str) -> String {
    let mut s = String::from("BAZAAR_");
    s.extend(service.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '-' {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    s
}

/// The subject of an event type published by `service`: the type itself
/// (`bazaar.<service>.<event>.v1`), with the service part taken from the publishing bus.
pub(crate) fn subject_for(service: &str, ty: &str) -> String {
    let rest = ty
        .strip_prefix("bazaar.")
        .and_then(|r| r.split_once('.'))
        .map_or(ty, |(_, rest)| rest);
    let rest: String = rest
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == '*' || c == '>' {
                '_'
            } else {
                c
            }
        })
        .collect();
    format!("bazaar.{service}.{rest}")
}

/// A durable consumer name: the subscription name with `.` (and other characters names may
/// not hold) as `_`.
pub(crate) fn durable_name(subscription: &str) -> String {
    subscription
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

struct Unsent {
    id: String,
    ty: String,
    envelope: String,
}

fn unsent_from(rows: &[sqlx::any::AnyRow]) -> Result<Vec<Unsent>, sqlx::Error> {
    rows.iter()
        .map(|r| {
            Ok(Unsent {
                id: r.try_get(0)?,
                ty: r.try_get(1)?,
                envelope: r.try_get(2)?,
            })
        })
        .collect()
}

const SELECT_UNSENT: &str =
    "SELECT id, type, envelope FROM msg_outbox WHERE pos IS NULL ORDER BY created_us, id LIMIT $1";

/// One JetStream relay round: publish up to [`RELAY_BATCH`] unsent rows (waiting for the
/// broker's acks), then mark them sent by giving them feed positions.
pub(crate) async fn relay_batch(inner: &Inner) -> anyhow::Result<i64> {
    let nats = inner
        .nats
        .as_ref()
        .context("the JetStream backend is not connected")?;
    let (unsent, _) = backlog(&inner.db).await?;
    let mut moved = 0;
    if unsent > 0 {
        if inner.db.backend() == Backend::Postgres {
            // One relay at a time across replicas (PostgreSQL has connections to spare for a
            // transaction held over the publish).
            let mut tx = inner.db.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(RELAY_LOCK)
                .execute(&mut *tx)
                .await?;
            let rows = sqlx::query(SELECT_UNSENT)
                .bind(RELAY_BATCH)
                .fetch_all(&mut *tx)
                .await?;
            let rows = unsent_from(&rows)?;
            publish_all(nats, &inner.config.broker_name(inner.service), &rows).await?;
            bazaar_runtime::failpoint::hit_async("messaging.relay.after_publish").await?;
            moved = mark_sent(&mut tx, &rows).await?;
            tx.commit().await?;
        } else {
            // SQLite has one writer: never hold it over a network call. Publish first, then
            // mark in a short transaction (a concurrent relay at worst republishes a row, which
            // the stream drops as a duplicate).
            let rows = sqlx::query(SELECT_UNSENT)
                .bind(RELAY_BATCH)
                .fetch_all(inner.db.reader())
                .await?;
            let rows = unsent_from(&rows)?;
            publish_all(nats, &inner.config.broker_name(inner.service), &rows).await?;
            bazaar_runtime::failpoint::hit_async("messaging.relay.after_publish").await?;
            let mut tx = inner.db.begin().await?;
            moved = mark_sent(&mut tx, &rows).await?;
            tx.commit().await?;
        }
        if moved > 0 {
            tracing::debug!(
                service = inner.service,
                events = moved,
                "Published events to JetStream."
            );
        }
    }
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

async fn publish_all(nats: &Nats, service: &str, rows: &[Unsent]) -> anyhow::Result<()> {
    let mut acks = Vec::with_capacity(rows.len());
    for row in rows {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", row.id.as_str());
        headers.insert("Content-Type", "application/cloudevents+json");
        let ack = nats
            .js
            .publish_with_headers(
                subject_for(service, &row.ty),
                headers,
                bytes::Bytes::from(row.envelope.clone()),
            )
            .await
            .with_context(|| format!("publish event {}", row.id))?;
        acks.push((row.id.as_str(), ack));
    }
    for (id, ack) in acks {
        ack.await
            .with_context(|| format!("JetStream did not acknowledge event {id}"))?;
    }
    Ok(())
}

/// Gives the published rows the next feed positions (rows another relay marked meanwhile
/// keep theirs).
async fn mark_sent(tx: &mut bazaar_store::Tx, rows: &[Unsent]) -> Result<i64, sqlx::Error> {
    let mut head: i64 = sqlx::query("SELECT COALESCE(MAX(pos), 0) FROM msg_outbox")
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    let mut moved = 0;
    for row in rows {
        let done = sqlx::query("UPDATE msg_outbox SET pos = $1 WHERE id = $2 AND pos IS NULL")
            .bind(head + 1)
            .bind(&row.id)
            .execute(&mut **tx)
            .await?;
        if done.rows_affected() == 1 {
            head += 1;
            moved += 1;
        }
    }
    Ok(moved)
}

/// The JetStream consumer of one subscription, until the bus stops. Connection or consumer
/// failures are retried with backoff, logged once per outage.
pub(crate) async fn run_consumer(inner: Arc<Inner>, sub: Subscription, handler: Arc<dyn Handler>) {
    refresh_dead_letter_gauge(&inner, sub.name).await;
    let mut failures = 0u32;
    loop {
        if inner.stop.is_cancelled() {
            break;
        }
        match consume(&inner, &sub, handler.as_ref(), &mut failures).await {
            Ok(()) => break,
            Err(e) => {
                failures = failures.saturating_add(1);
                if failures == 1 {
                    tracing::warn!(subscription = sub.name, producer = sub.producer, error = %format!("{e:#}"), "JetStream consumer failed; retrying.");
                } else {
                    tracing::debug!(subscription = sub.name, error = %format!("{e:#}"), "JetStream consumer still fails.");
                }
                let backoff = crate::config::RetryPolicy {
                    max_attempts: 1,
                    base: Duration::from_millis(100),
                    max: inner.config.unreachable_backoff_max,
                }
                .delay(failures);
                if !pause(&inner, backoff).await {
                    break;
                }
            }
        }
    }
    tracing::debug!(subscription = sub.name, "Consumer stopped.");
}

async fn consume(
    inner: &Inner,
    sub: &Subscription,
    handler: &dyn Handler,
    failures: &mut u32,
) -> anyhow::Result<()> {
    let nats = inner
        .nats
        .as_ref()
        .context("the JetStream backend is not connected")?;
    let stream = nats.ensure_stream(sub.producer, &inner.config).await?;
    let subjects: Vec<String> = sub
        .types
        .iter()
        .map(|t| subject_for(&inner.config.broker_name(sub.producer), t))
        .collect();
    let (filter_subject, filter_subjects) = match subjects.len() {
        0 => (String::new(), Vec::new()),
        1 => (subjects[0].clone(), Vec::new()),
        // Servers before 2.10 ignore `filter_subjects` and send everything: the handler side
        // skips the other types either way.
        _ => (String::new(), subjects),
    };
    let attempts = inner.config.retry.attempts();
    let durable = durable_name(&inner.config.broker_name(sub.name));
    let consumer: jetstream::consumer::PullConsumer = stream
        .create_consumer(pull::Config {
            durable_name: Some(durable.clone()),
            filter_subject,
            filter_subjects,
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: inner.config.ack_wait,
            // One delivery beyond the last attempt: if the process dies during the last
            // attempt, the event still comes back once to be dead-lettered.
            max_deliver: i64::from(attempts) + 1,
            max_ack_pending: inner.config.max_ack_pending.max(1),
            ..Default::default()
        })
        .await
        .with_context(|| format!("create the durable consumer {durable}"))?;
    let mut messages = consumer
        .messages()
        .await
        .with_context(|| format!("pull from the durable consumer {durable}"))?;
    if *failures > 0 {
        tracing::info!(subscription = sub.name, "JetStream consumer works again.");
        *failures = 0;
    }
    loop {
        let next = tokio::select! {
            () = inner.stop.cancelled() => return Ok(()),
            next = messages.next() => next,
        };
        let msg = match next {
            Some(Ok(msg)) => msg,
            Some(Err(e)) => return Err(anyhow::Error::new(e).context("receive from JetStream")),
            None => anyhow::bail!("the JetStream message stream ended"),
        };
        handle_message(inner, sub, handler, &msg).await?;
    }
}

async fn handle_message(
    inner: &Inner,
    sub: &Subscription,
    handler: &dyn Handler,
    msg: &jetstream::Message,
) -> anyhow::Result<()> {
    let (delivered, pending) = match msg.info() {
        Ok(info) => (info.delivered, info.pending),
        Err(e) => anyhow::bail!("a JetStream message without delivery info: {e}"),
    };
    metrics::consumer_lag(
        inner.service,
        sub.name,
        i64::try_from(pending).unwrap_or(i64::MAX),
    );
    let attempts = u32::try_from(delivered.max(1)).unwrap_or(u32::MAX);
    let raw = String::from_utf8_lossy(&msg.payload).into_owned();
    let env = match Envelope::parse(&raw) {
        Ok(env) => env,
        Err(e) => {
            let value: serde_json::Value = serde_json::from_str(&raw).unwrap_or_default();
            let seq = msg.info().map(|i| i.stream_sequence).unwrap_or_default();
            let event_id = value
                .get("id")
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map_or_else(|| format!("stream-seq-{seq}"), str::to_owned);
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
                attempts,
            };
            if store_until_done(inner, &dl, None).await {
                metrics::handled(inner.service, sub.name, Outcome::DeadLettered);
                ack(msg, AckKind::Ack).await;
            }
            return Ok(());
        }
    };
    if !sub.types.is_empty() && !sub.types.contains(&env.ty.as_str()) {
        ack(msg, AckKind::Ack).await;
        return Ok(());
    }
    let policy = inner.config.retry;
    match attempt(inner, sub.name, handler, &env, None).await {
        Attempt::Done(outcome) => {
            metrics::handled(inner.service, sub.name, outcome);
            ack(msg, AckKind::Ack).await;
        }
        Attempt::Failed(err) => {
            if err.is_permanent() || attempts >= policy.attempts() {
                let dl = DeadLetter {
                    subscription: sub.name,
                    event_id: &env.id,
                    ty: &env.ty,
                    envelope: &raw,
                    error: err.to_string(),
                    attempts,
                };
                if store_until_done(inner, &dl, None).await {
                    tracing::warn!(subscription = sub.name, event_id = %env.id, event_type = %env.ty, attempts, error = %err, "Event dead-lettered.");
                    metrics::handled(inner.service, sub.name, Outcome::DeadLettered);
                    ack(msg, AckKind::Ack).await;
                }
            } else {
                let delay = policy.delay(attempts);
                tracing::info!(subscription = sub.name, event_id = %env.id, attempt = attempts, error = %err, "Handler failed; JetStream redelivers later.");
                metrics::handled(inner.service, sub.name, Outcome::Retried);
                ack(msg, AckKind::Nak(Some(delay))).await;
            }
        }
    }
    Ok(())
}

/// Acks (or naks); a lost ack only means a redelivery, which the inbox absorbs.
async fn ack(msg: &jetstream::Message, kind: AckKind) {
    if let Err(e) = msg.ack_with(kind).await {
        tracing::debug!(error = %e, "Could not acknowledge a JetStream message.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_conventions() {
        assert_eq!(stream_name("catalog"), "BAZAAR_CATALOG");
        assert_eq!(stream_name("test.prod x"), "BAZAAR_TEST_PROD_X");
        assert_eq!(
            subject_for("catalog", "bazaar.catalog.product_created.v1"),
            "bazaar.catalog.product_created.v1"
        );
        assert_eq!(
            subject_for("testprod-1a", "bazaar.testprod.item.v1"),
            "bazaar.testprod-1a.item.v1"
        );
        assert_eq!(subject_for("svc", "odd type>"), "bazaar.svc.odd_type_");
        assert_eq!(durable_name("inventory.products"), "inventory_products");
    }
}
