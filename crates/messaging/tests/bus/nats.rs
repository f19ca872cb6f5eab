//! The same guarantees through NATS JetStream (skipped without `BAZAAR_TEST_NATS_URL`).
//! Every test uses producer names with a random suffix: its own stream and consumers.

use std::{sync::Arc, time::Duration};

use async_nats::jetstream;

use crate::{dead_letters::poison_then_redrive, helpers::*};

async fn js(url: &str) -> jetstream::Context {
    jetstream::new(async_nats::connect(url).await.unwrap())
}

fn stream_of(producer: &str) -> String {
    format!("BAZAAR_{}", producer.to_ascii_uppercase())
}

async fn stream_messages(js: &jetstream::Context, producer: &str) -> u64 {
    let mut stream = js.get_stream(stream_of(producer)).await.unwrap();
    stream.info().await.unwrap().state.messages
}

async fn drop_stream(url: &str, producer: &str) {
    let _ = js(url).await.delete_stream(stream_of(producer)).await;
}

#[tokio::test]
async fn delivers_in_order_through_jetstream_whoever_starts_first() {
    let Some(url) = nats_url() else { return };
    let dbs = Dbs::new(Backend::Sqlite).unwrap();
    let key = signing_key();
    let prod_name = unique("testprod");
    let cons_name = unique("testcons");
    // The consumer starts first: it creates the producer's stream itself.
    let consumer = Node::start(
        cons_name,
        dbs.open(cons_name).await,
        no_resolver(),
        config(Some(url.clone())),
        key.clone(),
    )
    .await;
    let recorder = Arc::new(Recorder::default());
    consumer
        .bus
        .subscribe(items_of(prod_name), recorder.clone());
    let js = js(&url).await;
    eventually("the consumer created the producer's stream", || async {
        js.get_stream(stream_of(prod_name)).await.is_ok()
    })
    .await;
    let producer = Node::start(
        prod_name,
        dbs.open(prod_name).await,
        no_resolver(),
        config(Some(url.clone())),
        key,
    )
    .await;
    let mut stream = js.get_stream(stream_of(prod_name)).await.unwrap();
    let info = stream.info().await.unwrap();
    assert!(info.config.duplicate_window >= Duration::from_secs(120));
    assert_eq!(info.config.subjects, vec![format!("bazaar.{prod_name}.>")]);

    producer.publish_items(0..20).await;
    eventually("all 20 events are applied", || async {
        recorder.applied().len() == 20
    })
    .await;
    consumer.wait_inbox(20).await;
    assert_eq!(recorder.applied(), (0..20).collect::<Vec<_>>());
    for n in 0..20 {
        assert_eq!(consumer.effects_of(n).await, 1);
    }
    eventually("the outbox is marked sent", || async {
        producer
            .scalar("SELECT COUNT(*) FROM msg_outbox WHERE pos IS NULL")
            .await
            == 0
    })
    .await;
    assert_eq!(stream_messages(&js, prod_name).await, 20);
    // No cursor table with JetStream.
    assert_eq!(consumer.scalar("SELECT COUNT(*) FROM msg_cursors").await, 0);
    drop_stream(&url, prod_name).await;
}

#[tokio::test]
async fn republished_events_are_dropped_by_the_broker_and_redeliveries_by_the_inbox() {
    let Some(url) = nats_url() else { return };
    let pair = Pair::start(
        Backend::Sqlite,
        config(Some(url.clone())),
        Recorder::default(),
    )
    .await
    .unwrap();
    let js = js(&url).await;
    pair.producer.publish_items(0..3).await;
    eventually("three events are applied", || async {
        pair.recorder.applied().len() == 3
    })
    .await;
    pair.consumer.wait_inbox(3).await;

    // A relay that died between the broker's ack and marking the rows sent publishes them
    // again: the stream keeps one copy of each.
    sqlx::query("UPDATE msg_outbox SET pos = NULL")
        .execute(pair.producer.db.writer())
        .await
        .unwrap();
    pair.producer.bus.notify();
    eventually("the relay marked the rows again", || async {
        pair.producer
            .scalar("SELECT COUNT(*) FROM msg_outbox WHERE pos IS NULL")
            .await
            == 0
    })
    .await;
    assert_eq!(stream_messages(&js, pair.producer.service).await, 3);

    // The consumer loses its acks (its durable consumer is recreated from the start of the
    // stream): the inbox acknowledges the redeliveries without running the handler.
    pair.consumer.shutdown().await;
    js.get_stream(stream_of(pair.producer.service))
        .await
        .unwrap()
        .delete_consumer("testcons_items")
        .await
        .unwrap();
    let consumer = Node::start(
        pair.consumer.service,
        pair.consumer.db.clone(),
        no_resolver(),
        config(Some(url.clone())),
        pair.consumer.key.clone(),
    )
    .await;
    consumer
        .bus
        .subscribe(items_of(pair.producer.service), pair.recorder.clone());
    pair.producer.publish_items([3]).await;
    // In stream order, so the redeliveries came first.
    eventually("the next event is applied", || async {
        pair.recorder.applied() == vec![0, 1, 2, 3]
    })
    .await;
    consumer.wait_inbox(4).await;
    for n in 0..3 {
        assert_eq!(pair.recorder.calls_of(n), 1);
        assert_eq!(consumer.effects_of(n).await, 1);
    }
    drop_stream(&url, pair.producer.service).await;
}

#[tokio::test]
async fn a_handler_that_fails_twice_applies_once_through_jetstream() {
    let Some(url) = nats_url() else { return };
    let recorder = Recorder::default();
    recorder
        .fail_next
        .store(2, std::sync::atomic::Ordering::SeqCst);
    let pair = Pair::start(Backend::Sqlite, config(Some(url.clone())), recorder)
        .await
        .unwrap();
    pair.producer.publish_items([5, 6]).await;
    eventually("both events are applied", || async {
        pair.recorder.applied() == vec![5, 6]
    })
    .await;
    pair.consumer.wait_inbox(2).await;
    assert_eq!(pair.recorder.calls_of(5), 3);
    assert_eq!(pair.consumer.effects_of(5).await, 1);
    assert!(pair.consumer.dead_letters().await.is_empty());
    drop_stream(&url, pair.producer.service).await;
}

#[tokio::test]
async fn a_poison_event_is_dead_lettered_and_redriven_through_jetstream() {
    let Some(url) = nats_url() else { return };
    let cfg = config(Some(url.clone()));
    let attempts = cfg.retry.max_attempts;
    let pair = Pair::start(Backend::Sqlite, cfg, Recorder::default())
        .await
        .unwrap();
    poison_then_redrive(&pair, attempts).await;
    drop_stream(&url, pair.producer.service).await;
}

#[tokio::test]
async fn a_permanent_error_is_dead_lettered_at_once_through_jetstream() {
    let Some(url) = nats_url() else { return };
    let recorder = Recorder::default();
    recorder.permanent.lock().unwrap().insert(2);
    let pair = Pair::start(Backend::Sqlite, config(Some(url.clone())), recorder)
        .await
        .unwrap();
    pair.producer.publish_items(1..=3).await;
    eventually("the other events are applied", || async {
        pair.recorder.applied() == vec![1, 3]
    })
    .await;
    pair.consumer.wait_inbox(2).await;
    let letters = pair.consumer.dead_letters().await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["attempts"], 1);
    assert_eq!(pair.recorder.calls_of(2), 1);
    drop_stream(&url, pair.producer.service).await;
}

#[tokio::test]
async fn postgres_producers_publish_through_jetstream() {
    let Some(url) = nats_url() else { return };
    let Some(pair) = Pair::start(
        Backend::Postgres,
        config(Some(url.clone())),
        Recorder::default(),
    )
    .await
    else {
        return;
    };
    pair.producer.publish_items(0..10).await;
    eventually("all events are applied", || async {
        pair.recorder.applied().len() == 10
    })
    .await;
    assert_eq!(pair.recorder.applied(), (0..10).collect::<Vec<_>>());
    drop_stream(&url, pair.producer.service).await;
}
