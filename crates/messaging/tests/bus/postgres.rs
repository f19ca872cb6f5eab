//! PostgreSQL: transactions that commit out of insertion order, two relays on one database.

use std::{collections::HashSet, sync::Arc, time::Duration};

use bazaar_messaging::publish;
use rand::Rng;
use sqlx::Row;

use crate::helpers::*;

#[tokio::test]
async fn concurrent_producers_deliver_every_event_exactly_once() {
    let Some(dbs) = Dbs::new(Backend::Postgres) else {
        return;
    };
    let key = signing_key();
    let prod_name = unique("testprod");
    let cons_name = unique("testcons");
    let prod_db = dbs.open(prod_name).await;
    // Two replicas of the producer: two relays racing on one database.
    let replica_a = Node::start(
        prod_name,
        prod_db.clone(),
        no_resolver(),
        config(None),
        key.clone(),
    )
    .await;
    let replica_b = Node::start(
        prod_name,
        dbs.open(prod_name).await,
        no_resolver(),
        config(None),
        key.clone(),
    )
    .await;
    let resolver = Arc::new(SwitchResolver::default());
    resolver.set(prod_name, &replica_a.addr);
    let consumer = Node::start(
        cons_name,
        dbs.open(cons_name).await,
        resolver,
        config(None),
        key,
    )
    .await;
    let recorder = Arc::new(Recorder::default());
    consumer
        .bus
        .subscribe(items_of(prod_name), recorder.clone());

    const WRITERS: i64 = 8;
    const TXS: i64 = 15;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let db = prod_db.clone();
        let bus = if w % 2 == 0 {
            replica_a.bus.clone()
        } else {
            replica_b.bus.clone()
        };
        tasks.push(tokio::spawn(async move {
            for t in 0..TXS {
                let mut tx = db.begin().await.unwrap();
                // Two events per transaction, and a pause before the commit so transactions
                // commit in another order than they inserted.
                publish(
                    &mut tx,
                    &Item {
                        n: (w * TXS + t) * 2,
                    },
                )
                .await
                .unwrap();
                let pause = rand::thread_rng().gen_range(0..15);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                publish(
                    &mut tx,
                    &Item {
                        n: (w * TXS + t) * 2 + 1,
                    },
                )
                .await
                .unwrap();
                tx.commit().await.unwrap();
                bus.notify();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = usize::try_from(WRITERS * TXS * 2).unwrap();
    eventually("every event is applied", || async {
        recorder.applied().len() >= total
    })
    .await;
    consumer.wait_inbox(i64::try_from(total).unwrap()).await;
    eventually("the cursor reaches the head", || async {
        consumer.cursor("testcons.items").await == i64::try_from(total).unwrap()
    })
    .await;
    let applied = recorder.applied();
    assert_eq!(applied.len(), total);
    let distinct: HashSet<i64> = applied.iter().copied().collect();
    assert_eq!(distinct.len(), total);
    assert_eq!(recorder.total_calls(), u32::try_from(total).unwrap());
    assert_eq!(
        consumer.scalar("SELECT COUNT(*) FROM effects").await,
        i64::try_from(total).unwrap()
    );
    // Positions are 1..=total without gaps, and the consumer applied the feed's order.
    let rows = sqlx::query("SELECT pos, envelope FROM msg_outbox ORDER BY pos")
        .fetch_all(prod_db.reader())
        .await
        .unwrap();
    let positions: Vec<i64> = rows.iter().map(|r| r.get::<i64, _>(0)).collect();
    assert_eq!(
        positions,
        (1..=i64::try_from(total).unwrap()).collect::<Vec<_>>()
    );
    let ns: Vec<i64> = rows
        .iter()
        .map(|r| {
            let env: serde_json::Value = serde_json::from_str(&r.get::<String, _>(1)).unwrap();
            env["data"]["n"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(applied, ns, "the consumer applied the feed order");
}
