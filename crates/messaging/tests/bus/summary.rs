//! The messaging summary of `GET /admin/messaging` (and of every service's `/admin/state`).

use std::sync::atomic::Ordering;

use bazaar_messaging::{read_snapshot, MessagingSummary};

use crate::helpers::*;

/// The summary of `node` over its HTTP route, as an admin.
async fn summary_of(node: &Node) -> MessagingSummary {
    let v = node
        .get_json("/admin/messaging", Some(&node.admin_token()))
        .await;
    serde_json::from_value(v).unwrap()
}

async fn unsent_then_relayed(backend: Backend) {
    let Some(dbs) = Dbs::new(backend) else {
        return;
    };
    let name = unique("testprod");
    let node = Node::start(
        name,
        dbs.open(name).await,
        no_resolver(),
        config(None),
        signing_key(),
    )
    .await;
    // With the bus stopped nothing relays: the two events stay unsent.
    node.shutdown().await;
    node.publish_items([1, 2]).await;
    let mut tx = read_snapshot(&node.db).await.unwrap();
    let s = node.bus.state_summary(&mut tx).await.unwrap();
    drop(tx);
    assert_eq!(s.outbox_unsent, 2, "{s:?}");
    assert!(
        s.outbox_oldest_unsent_age_ms.is_some_and(|a| a >= 0),
        "{s:?}"
    );
    assert_eq!(
        (s.inbox_processed, s.dead_letters, s.dead_letters_total),
        (0, 0, 0)
    );
    assert!(s.subscriptions.is_empty(), "{s:?}");

    // A new bus on the same database relays them.
    let node = Node::start(
        name,
        node.db.clone(),
        no_resolver(),
        config(None),
        signing_key(),
    )
    .await;
    eventually("the outbox is relayed", || async {
        summary_of(&node).await.outbox_unsent == 0
    })
    .await;
    let s = summary_of(&node).await;
    assert_eq!(s.outbox_oldest_unsent_age_ms, None);
    node.shutdown().await;
}

#[tokio::test]
async fn unsent_events_are_counted_until_relayed_on_sqlite() {
    unsent_then_relayed(Backend::Sqlite).await;
}

#[tokio::test]
async fn unsent_events_are_counted_until_relayed_on_postgres() {
    unsent_then_relayed(Backend::Postgres).await;
}

#[tokio::test]
async fn the_consumer_summary_counts_inbox_dead_letters_and_cursors() {
    let recorder = Recorder::default();
    recorder.poison.lock().unwrap().insert(1);
    let pair = Pair::start(Backend::Sqlite, config(None), recorder)
        .await
        .unwrap();
    pair.producer.publish_items(0..3).await;
    pair.consumer.wait_inbox(2).await;
    eventually("the poison event is dead-lettered and passed", || async {
        pair.consumer.cursor("testcons.items").await == 3
            && pair.consumer.dead_letters().await.len() == 1
    })
    .await;
    let s = summary_of(&pair.consumer).await;
    assert_eq!(s.inbox_processed, 2, "{s:?}");
    assert_eq!((s.dead_letters, s.dead_letters_total), (1, 1), "{s:?}");
    assert_eq!(s.subscriptions.len(), 1, "{s:?}");
    assert_eq!(s.subscriptions[0].subscription, "testcons.items");
    assert_eq!(s.subscriptions[0].cursor, Some(3));
    // The consumer has seen the producer's head: nothing waits.
    let mut lag = s.subscriptions[0].lag;
    for _ in 0..100 {
        if lag == Some(0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        lag = summary_of(&pair.consumer).await.subscriptions[0].lag;
    }
    assert_eq!(lag, Some(0));
    assert_eq!(s.outbox_unsent, 0);

    // Redriven: no longer counted as dead, still in the total.
    pair.recorder.fixed.store(true, Ordering::SeqCst);
    let id = pair.consumer.dead_letters().await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/admin/dead-letters/{}/{id}/redrive", pair.consumer.service);
    let res = pair
        .consumer
        .post(&path, Some(&pair.consumer.admin_token()))
        .await;
    assert_eq!(res.status(), 200);
    let s = summary_of(&pair.consumer).await;
    assert_eq!(s.inbox_processed, 3, "{s:?}");
    assert_eq!((s.dead_letters, s.dead_letters_total), (0, 1), "{s:?}");

    // The producer consumes nothing and has relayed everything.
    let p = summary_of(&pair.producer).await;
    assert!(p.subscriptions.is_empty(), "{p:?}");
    eventually("the producer's outbox is relayed", || async {
        summary_of(&pair.producer).await.outbox_unsent == 0
    })
    .await;

    // Admins only.
    let res = pair
        .consumer
        .get(
            "/admin/messaging",
            Some(&pair.consumer.token(&["customer"])),
        )
        .await;
    assert_eq!(res.status(), 403);
    let res = pair.consumer.get("/admin/messaging", None).await;
    assert_eq!(res.status(), 401);
}
