//! Poison events, dead letters and redrives (feeds backend; the NATS tests reuse the checks).

use std::sync::atomic::Ordering;

use bazaar_contracts::events::EventPayload;

use serde_json::Value;

use crate::helpers::*;

/// Publishes 0..4 with event 1 poisoned; checks the dead letter, the admin API and a redrive.
pub async fn poison_then_redrive(pair: &Pair, max_attempts: u32) {
    pair.recorder.poison.lock().unwrap().insert(1);
    let ids = pair.producer.publish_items(0..4).await;
    eventually("the events after the poison one are applied", || async {
        pair.recorder.applied() == vec![0, 2, 3]
    })
    .await;
    pair.consumer.wait_inbox(3).await;
    let letters = pair.consumer.dead_letters().await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let dl = &letters[0];
    assert_eq!(dl["event_id"], ids[1].as_str());
    assert_eq!(dl["subscription"], "testcons.items");
    assert_eq!(dl["type"], Item::TYPE);
    assert_eq!(dl["status"], "dead");
    assert_eq!(dl["attempts"], i64::from(max_attempts));
    assert!(
        dl["error"].as_str().unwrap().contains("poison event 1"),
        "{dl}"
    );
    assert!(dl["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(dl["updated_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(pair.recorder.calls_of(1), max_attempts);
    // Every failed attempt was rolled back.
    assert_eq!(pair.consumer.effects_of(1).await, 0);

    let id = dl["id"].as_str().unwrap().to_owned();
    let service = pair.consumer.service;
    let path = format!("/admin/dead-letters/{service}/{id}/redrive");

    // Not an admin, or no token.
    let res = pair
        .consumer
        .post(&path, Some(&pair.consumer.token(&["customer"])))
        .await;
    assert_eq!(res.status(), 403);
    let res = pair.consumer.post(&path, None).await;
    assert_eq!(res.status(), 401);
    let res = pair.consumer.get("/admin/dead-letters", None).await;
    assert_eq!(res.status(), 401);
    // Unknown dead letter or service.
    let admin = pair.consumer.admin_token();
    let res = pair
        .consumer
        .post(
            &format!(
                "/admin/dead-letters/{service}/{}/redrive",
                uuid::Uuid::now_v7()
            ),
            Some(&admin),
        )
        .await;
    assert_eq!(res.status(), 404);
    let res = pair
        .consumer
        .post(
            &format!("/admin/dead-letters/elsewhere/{id}/redrive"),
            Some(&admin),
        )
        .await;
    assert_eq!(res.status(), 404);

    // Still broken: 409, the dead letter stays, one more attempt counted.
    let res = pair.consumer.post(&path, Some(&admin)).await;
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["detail"],
        "the handler failed again; the dead letter is kept"
    );
    let letters = pair.consumer.dead_letters().await;
    assert_eq!(letters[0]["status"], "dead");
    assert_eq!(letters[0]["attempts"], i64::from(max_attempts) + 1);
    assert_eq!(pair.consumer.effects_of(1).await, 0);

    // Fixed: the redrive applies it once.
    pair.recorder.fixed.store(true, Ordering::SeqCst);
    let res = pair.consumer.post(&path, Some(&admin)).await;
    assert_eq!(res.status(), 200);
    let view: Value = res.json().await.unwrap();
    assert_eq!(view["id"], id.as_str());
    assert_eq!(view["status"], "redriven");
    assert_eq!(pair.consumer.effects_of(1).await, 1);
    let calls = pair.recorder.calls_of(1);

    // A second redrive is a no-op.
    let res = pair.consumer.post(&path, Some(&admin)).await;
    assert_eq!(res.status(), 200);
    let view: Value = res.json().await.unwrap();
    assert_eq!(view["status"], "redriven");
    assert_eq!(pair.recorder.calls_of(1), calls);
    assert_eq!(pair.consumer.effects_of(1).await, 1);

    // The list filters by status and service.
    let dead = pair
        .consumer
        .get_json("/admin/dead-letters?status=dead", Some(&admin))
        .await;
    assert!(dead["items"].as_array().unwrap().is_empty());
    let redriven = pair
        .consumer
        .get_json(
            &format!("/admin/dead-letters?status=redriven&service={service}"),
            Some(&admin),
        )
        .await;
    assert_eq!(redriven["items"].as_array().unwrap().len(), 1);
    let other = pair
        .consumer
        .get_json("/admin/dead-letters?service=someone-else", Some(&admin))
        .await;
    assert!(other["items"].as_array().unwrap().is_empty());
    assert_eq!(other["next_cursor"], Value::Null);
}

#[tokio::test]
async fn a_poison_event_is_dead_lettered_and_redriven_once_fixed() {
    let pair = Pair::start(Backend::Sqlite, config(None), Recorder::default())
        .await
        .unwrap();
    poison_then_redrive(&pair, config(None).retry.max_attempts).await;
    // The metrics page shows the counts.
    let metrics = pair
        .consumer
        .get("/metrics", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("bazaar_events_handled_total"), "{metrics}");
    for name in [
        "bazaar_dead_letters",
        "bazaar_consumer_lag",
        "bazaar_outbox_backlog",
        "bazaar_outbox_oldest_unsent_age_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing: {metrics}");
    }
    assert!(metrics.contains("outcome=\"dead_lettered\""), "{metrics}");
}

#[tokio::test]
async fn a_permanent_error_is_dead_lettered_at_once() {
    let recorder = Recorder::default();
    recorder.permanent.lock().unwrap().insert(2);
    let pair = Pair::start(Backend::Sqlite, config(None), recorder)
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
    assert!(letters[0]["error"]
        .as_str()
        .unwrap()
        .contains("event 2 is refused"));
    assert_eq!(pair.recorder.calls_of(2), 1);
    assert_eq!(pair.consumer.effects_of(2).await, 0);
}

#[tokio::test]
async fn dead_letters_are_listed_newest_first_in_pages() {
    let recorder = Recorder::default();
    recorder.permanent.lock().unwrap().extend([1, 2, 3]);
    let pair = Pair::start(Backend::Sqlite, config(None), recorder)
        .await
        .unwrap();
    let ids = pair.producer.publish_items(1..=3).await;
    eventually("three dead letters", || async {
        pair.consumer.dead_letters().await.len() == 3
    })
    .await;
    let admin = pair.consumer.admin_token();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/admin/dead-letters?limit=2&cursor={c}"),
            None => "/admin/dead-letters?limit=2".to_owned(),
        };
        let page = pair.consumer.get_json(&path, Some(&admin)).await;
        for item in page["items"].as_array().unwrap() {
            seen.push(item["event_id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    for q in [
        "limit=0",
        "limit=101",
        "limit=x",
        "status=gone",
        "cursor=nope",
    ] {
        let res = pair
            .consumer
            .get(&format!("/admin/dead-letters?{q}"), Some(&admin))
            .await;
        assert_eq!(res.status(), 400, "{q}");
    }
}
