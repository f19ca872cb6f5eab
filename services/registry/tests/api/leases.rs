use std::time::Duration;

use crate::helpers::{ids, instance, TestRegistry};

/// Polls until `done` holds; panics after a generous deadline (this is not a timing assertion:
/// the deadline only stops a broken build from hanging).
pub async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_instance_without_heartbeats_expires_and_its_heartbeat_is_then_refused() {
    let r = TestRegistry::with_ttl(Duration::from_millis(300)).await;
    let res = r.register(&instance("catalog", "a", 1)).await;
    let lease: serde_json::Value = res.json().await.unwrap();
    assert_eq!(lease["lease_ttl_ms"], 300);
    assert_eq!(lease["heartbeat_ms"], 100);
    let index = r.list("catalog").await["index"].as_u64().unwrap();

    eventually("the instance expires", || async {
        ids(&r.list("catalog").await).is_empty()
    })
    .await;
    assert!(
        r.list("catalog").await["index"].as_u64().unwrap() > index,
        "expiry is a change"
    );
    assert_eq!(r.heartbeat("catalog", "a").await.status(), 404);

    assert_eq!(r.register(&instance("catalog", "a", 1)).await.status(), 201);
    assert_eq!(ids(&r.list("catalog").await), ["a"]);
}

#[tokio::test]
async fn a_lease_ttl_out_of_range_is_refused_at_start() {
    for ttl in [
        Duration::ZERO,
        Duration::from_millis(10),
        Duration::from_secs(7200),
    ] {
        let settings = bazaar_registry::Settings {
            addr: "127.0.0.1:0".parse().unwrap(),
            lease_ttl: ttl,
        };
        assert!(bazaar_registry::build(settings).await.is_err(), "{ttl:?}");
    }
}
