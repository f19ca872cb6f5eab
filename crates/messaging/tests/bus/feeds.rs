//! Delivery over the HTTP feed.

use std::{sync::Arc, time::Duration};

use bazaar_contracts::events::EventPayload;
use bazaar_messaging::{publish, BusConfig};
use bazaar_runtime::context::RequestContext;

use crate::helpers::*;

async fn delivers_events_in_order(backend: Backend) {
    let Some(pair) = Pair::start(backend, config(None), Recorder::default()).await else {
        return;
    };
    let ids = pair.producer.publish_items(0..30).await;
    eventually("all 30 events are applied", || async {
        pair.recorder.applied().len() == 30
    })
    .await;
    pair.consumer.wait_inbox(30).await;
    assert_eq!(pair.recorder.applied(), (0..30).collect::<Vec<_>>());
    for n in 0..30 {
        assert_eq!(pair.consumer.effects_of(n).await, 1, "event {n}");
    }
    assert_eq!(
        pair.consumer
            .scalar("SELECT COUNT(*) FROM msg_inbox WHERE subscription = 'testcons.items'")
            .await,
        30
    );
    // The producer's feed holds them at positions 1..=30 in publish order.
    let page = pair
        .producer
        .get_json("/internal/events?after=0&limit=500", None)
        .await;
    let events = page["events"].as_array().unwrap();
    assert_eq!(page["head"], 30);
    let feed_ids: Vec<&str> = events
        .iter()
        .map(|e| e["event"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(feed_ids, ids.iter().map(String::as_str).collect::<Vec<_>>());
    let positions: Vec<i64> = events.iter().map(|e| e["pos"].as_i64().unwrap()).collect();
    assert_eq!(positions, (1..=30).collect::<Vec<_>>());
    eventually("the cursor reaches the head", || async {
        pair.consumer.cursor("testcons.items").await == 30
    })
    .await;
}

#[tokio::test]
async fn delivers_events_in_order_on_sqlite() {
    delivers_events_in_order(Backend::Sqlite).await;
}

#[tokio::test]
async fn delivers_events_in_order_on_postgres() {
    delivers_events_in_order(Backend::Postgres).await;
}

#[tokio::test]
async fn the_feed_serves_cloudevents_and_consumers_skip_other_types() {
    let pair = Pair::start(Backend::Sqlite, config(None), Recorder::default())
        .await
        .unwrap();
    let ctx = RequestContext::from_headers(&http::HeaderMap::new(), "/test");
    let trace_id = ctx.trace_id.clone();
    bazaar_runtime::context::scope(ctx, async {
        let mut tx = pair.producer.db.begin().await.unwrap();
        publish(&mut tx, &Other { n: 100 }).await.unwrap();
        publish(&mut tx, &Item { n: 1 }).await.unwrap();
        publish(&mut tx, &Other { n: 101 }).await.unwrap();
        tx.commit().await.unwrap();
    })
    .await;
    pair.producer.bus.notify();
    eventually("the item is applied", || async {
        pair.recorder.applied() == vec![1]
    })
    .await;
    // The consumer continues the producer's trace.
    assert_eq!(
        *pair.recorder.trace_ids.lock().unwrap(),
        vec![trace_id.clone()]
    );
    // It moves past the events it does not take.
    eventually("the cursor passes the skipped events", || async {
        pair.consumer.cursor("testcons.items").await == 3
    })
    .await;

    let all = pair.producer.get_json("/internal/events", None).await;
    assert_eq!(all["head"], 3);
    let env = &all["events"][1]["event"];
    assert_eq!(env["specversion"], "1.0");
    assert_eq!(env["type"], Item::TYPE);
    assert_eq!(env["source"], "/bazaar/testprod");
    assert_eq!(env["subject"], "item-1");
    assert_eq!(env["datacontenttype"], "application/json");
    assert_eq!(env["data"]["n"], 1);
    assert!(env["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        uuid::Uuid::parse_str(env["id"].as_str().unwrap())
            .unwrap()
            .get_version_num(),
        7
    );
    assert!(env["traceparent"]
        .as_str()
        .unwrap()
        .starts_with(&format!("00-{trace_id}-")));

    let items = pair
        .producer
        .get_json(&format!("/internal/events?types={}", Item::TYPE), None)
        .await;
    assert_eq!(items["events"].as_array().unwrap().len(), 1);
    assert_eq!(items["events"][0]["pos"], 2);
    assert_eq!(items["head"], 3);
    let others = pair
        .producer
        .get_json(
            &format!("/internal/events?after=1&limit=1&types={}", Other::TYPE),
            None,
        )
        .await;
    assert_eq!(others["events"].as_array().unwrap().len(), 1);
    assert_eq!(others["events"][0]["pos"], 3);
}

#[tokio::test]
async fn bad_feed_parameters_are_answered_with_400_problems() {
    let dbs = Dbs::new(Backend::Sqlite).unwrap();
    let name = unique("testprod");
    let node = Node::start(
        name,
        dbs.open(name).await,
        no_resolver(),
        config(None),
        signing_key(),
    )
    .await;
    for q in [
        "after=-1",
        "after=abc",
        "limit=0",
        "limit=501",
        "wait=31",
        "types=bad%20type",
    ] {
        let res = node.get(&format!("/internal/events?{q}"), None).await;
        assert_eq!(res.status(), 400, "{q}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{q}"
        );
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["type"], "urn:bazaar:problem:malformed-request");
    }
}

#[tokio::test]
async fn a_long_poll_is_answered_when_the_relay_is_notified() {
    let dbs = Dbs::new(Backend::Sqlite).unwrap();
    let name = unique("testprod");
    // The relay never polls on its own: only `notify` can make the event visible.
    let cfg = BusConfig {
        relay_poll: Duration::from_secs(3600),
        ..config(None)
    };
    let node = Arc::new(
        Node::start(
            name,
            dbs.open(name).await,
            no_resolver(),
            cfg,
            signing_key(),
        )
        .await,
    );
    let polling = {
        let node = node.clone();
        tokio::spawn(async move {
            node.get_json("/internal/events?after=0&wait=30", None)
                .await
        })
    };
    // Give the request time to park (the assertion below holds either way).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ids = node.publish_items([7]).await;
    let page = polling.await.unwrap();
    // Had the poll not been woken, it would have ended after 30 s with no event: nothing
    // relays without a notify.
    assert_eq!(page["events"][0]["event"]["id"], ids[0].as_str());
    assert_eq!(page["head"], 1);
}

#[tokio::test]
async fn an_event_committed_while_no_relay_ran_is_delivered_once_after_a_restart() {
    let dbs = Dbs::new(Backend::Sqlite).unwrap();
    let key = signing_key();
    let prod_name = unique("testprod");
    let cons_name = unique("testcons");
    let prod_db = dbs.open(prod_name).await;
    // Committed, then the process "died" before any relay saw it.
    let mut tx = prod_db.begin().await.unwrap();
    let first = publish(&mut tx, &Item { n: 1 }).await.unwrap();
    tx.commit().await.unwrap();

    let resolver = Arc::new(SwitchResolver::default());
    let producer = Node::start(
        prod_name,
        prod_db.clone(),
        no_resolver(),
        config(None),
        key.clone(),
    )
    .await;
    resolver.set(prod_name, &producer.addr);
    let consumer = Node::start(
        cons_name,
        dbs.open(cons_name).await,
        resolver.clone(),
        config(None),
        key.clone(),
    )
    .await;
    let recorder = Arc::new(Recorder::default());
    consumer
        .bus
        .subscribe(items_of(prod_name), recorder.clone());
    eventually("the orphaned event is delivered", || async {
        recorder.applied() == vec![1]
    })
    .await;

    // The producer goes away; another event commits with no relay running; the consumer
    // keeps knocking on the dead address meanwhile.
    producer.shutdown().await;
    let mut tx = prod_db.begin().await.unwrap();
    let second = publish(&mut tx, &Item { n: 2 }).await.unwrap();
    tx.commit().await.unwrap();
    let unsent = producer
        .scalar("SELECT COUNT(*) FROM msg_outbox WHERE pos IS NULL")
        .await;
    assert_eq!(unsent, 1);

    let restarted = Node::start(prod_name, prod_db, no_resolver(), config(None), key).await;
    resolver.set(prod_name, &restarted.addr);
    eventually("the second event is delivered", || async {
        recorder.applied() == vec![1, 2]
    })
    .await;
    consumer.wait_inbox(2).await;
    assert_ne!(first, second);
    assert_eq!(recorder.calls_of(1), 1);
    assert_eq!(recorder.calls_of(2), 1);
    assert_eq!(consumer.effects_of(1).await, 1);
    assert_eq!(consumer.effects_of(2).await, 1);
}

#[tokio::test]
async fn a_handler_that_fails_twice_applies_its_effect_once() {
    let recorder = Recorder::default();
    recorder
        .fail_next
        .store(2, std::sync::atomic::Ordering::SeqCst);
    let pair = Pair::start(Backend::Sqlite, config(None), recorder)
        .await
        .unwrap();
    pair.producer.publish_items([5, 6]).await;
    eventually("both events are applied", || async {
        pair.recorder.applied() == vec![5, 6]
    })
    .await;
    pair.consumer.wait_inbox(2).await;
    assert_eq!(pair.recorder.calls_of(5), 3);
    assert_eq!(pair.recorder.calls_of(6), 1);
    // The failed attempts' writes were rolled back.
    assert_eq!(pair.consumer.effects_of(5).await, 1);
    assert_eq!(
        pair.consumer.scalar("SELECT COUNT(*) FROM msg_inbox").await,
        2
    );
    assert!(pair.consumer.dead_letters().await.is_empty());
}

#[tokio::test]
async fn a_duplicate_delivery_is_acknowledged_without_effect() {
    let pair = Pair::start(Backend::Sqlite, config(None), Recorder::default())
        .await
        .unwrap();
    pair.producer.publish_items(0..3).await;
    eventually("three events are applied", || async {
        pair.recorder.applied().len() == 3
    })
    .await;
    pair.consumer.wait_inbox(3).await;
    eventually("the cursor is at 3", || async {
        pair.consumer.cursor("testcons.items").await == 3
    })
    .await;

    // The consumer restarts with its cursor set back: the feed delivers all three again.
    pair.consumer.shutdown().await;
    sqlx::query("UPDATE msg_cursors SET pos = 0")
        .execute(pair.consumer.db.writer())
        .await
        .unwrap();
    let consumer = Node::start(
        pair.consumer.service,
        pair.consumer.db.clone(),
        static_resolver(pair.producer.service, &pair.producer.addr),
        config(None),
        pair.consumer.key.clone(),
    )
    .await;
    consumer
        .bus
        .subscribe(items_of(pair.producer.service), pair.recorder.clone());
    eventually("the redelivered events are acknowledged", || async {
        consumer.cursor("testcons.items").await == 3
    })
    .await;
    assert_eq!(pair.recorder.total_calls(), 3);
    for n in 0..3 {
        assert_eq!(consumer.effects_of(n).await, 1);
    }
    // Each redelivery is counted on its inbox row, and the summary totals them.
    assert_eq!(
        consumer
            .scalar("SELECT COUNT(*) FROM msg_inbox WHERE duplicates = 1")
            .await,
        3
    );
    let summary = consumer
        .get_json("/admin/messaging", Some(&consumer.admin_token()))
        .await;
    assert_eq!(summary["inbox_duplicates"], 3, "{summary}");
    assert_eq!(summary["inbox_processed"], 3, "{summary}");
    // And the consumer still takes new events.
    pair.producer.publish_items([3]).await;
    eventually("the next event is applied", || async {
        pair.recorder.applied() == vec![0, 1, 2, 3]
    })
    .await;
}

#[tokio::test]
async fn stopping_lets_a_running_handler_commit_and_ends_every_task() {
    let pair = Pair::start(Backend::Sqlite, config(None), Recorder::default())
        .await
        .unwrap();
    let held = pair.recorder.gate.write().await;
    pair.producer.publish_items([1]).await;
    eventually("the handler is running", || async {
        pair.recorder.calls_of(1) == 1
    })
    .await;
    pair.consumer.stop.cancel();
    drop(held);
    // Every task of the bus ends (a task that ignored the stop would hang here).
    pair.consumer.bus.stopped().await;
    // The handler that was running when the stop came finished its transaction.
    assert_eq!(pair.recorder.applied(), vec![1]);
    assert_eq!(pair.consumer.effects_of(1).await, 1);
    pair.consumer.wait_inbox(1).await;
    pair.producer.shutdown().await;
}

/// Two replicas of a consumer (one database, two instances): one holds the subscription's
/// lease and handles every event, the other waits; when the holder stops, the other takes
/// over where the shared cursor stands. Nothing is handled twice, nothing is skipped.
#[tokio::test]
async fn consumer_replicas_share_a_subscription_through_a_lease() {
    let dbs = Dbs::new(Backend::Sqlite).unwrap();
    let key = signing_key();
    let prod_name = unique("testprod");
    let cons_name = unique("testcons");
    let producer = Node::start(
        prod_name,
        dbs.open(prod_name).await,
        no_resolver(),
        config(None),
        key.clone(),
    )
    .await;
    let replica = |instance: &str| BusConfig {
        instance: instance.to_owned(),
        ..config(None)
    };
    let mut nodes = Vec::new();
    let mut recorders = Vec::new();
    for instance in ["cons-1", "cons-2"] {
        let node = Node::start(
            cons_name,
            dbs.open(cons_name).await,
            static_resolver(prod_name, &producer.addr),
            replica(instance),
            key.clone(),
        )
        .await;
        let recorder = Arc::new(Recorder::default());
        node.bus.subscribe(items_of(prod_name), recorder.clone());
        nodes.push(node);
        recorders.push(recorder);
    }
    producer.publish_items(1..=30).await;
    nodes[0].wait_inbox(30).await;
    let calls: Vec<u32> = recorders.iter().map(|r| r.total_calls()).collect();
    assert_eq!(
        calls.iter().sum::<u32>(),
        30,
        "each event handled once: {calls:?}"
    );
    assert!(calls.contains(&0), "one replica held the lease: {calls:?}");
    let holder = calls.iter().position(|c| *c == 30).unwrap();
    let other = 1 - holder;

    nodes[holder].shutdown().await;
    producer.publish_items(31..=40).await;
    eventually("the other replica takes over", || async {
        recorders[other].applied().len() == 10
    })
    .await;
    assert_eq!(recorders[other].applied(), (31..=40).collect::<Vec<_>>());
    for n in 1..=40 {
        assert_eq!(nodes[other].effects_of(n).await, 1, "event {n}");
    }
}
