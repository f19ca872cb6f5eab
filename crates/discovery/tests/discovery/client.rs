use std::time::Duration;

use bazaar_discovery::{DiscoveryError, HeartbeatOutcome, RegistryClient};

use crate::helpers::{ids, instance, TestRegistry};

#[tokio::test]
async fn the_client_registers_lists_heartbeats_and_deregisters() {
    let r = TestRegistry::start(Duration::from_secs(9)).await;
    let c = r.client();

    let lease = c.register(&instance("catalog", "b", 2)).await.unwrap();
    assert_eq!(lease.ttl, Duration::from_secs(9));
    assert_eq!(lease.heartbeat, Duration::from_secs(3));
    let mut a = instance("catalog", "a", 1);
    a.version = "1.0.0".into();
    a.grpc_addr = Some("127.0.0.1:9001".into());
    a.metadata.insert("zone".into(), "a".into());
    c.register(&a).await.unwrap();

    let (index, set) = c.list("catalog").await.unwrap();
    assert_eq!(set[0], a);
    assert_eq!(ids(&set), ["a", "b"]);

    assert_eq!(
        c.heartbeat("catalog", "a").await.unwrap(),
        HeartbeatOutcome::Ok
    );
    assert_eq!(
        c.heartbeat("catalog", "nope").await.unwrap(),
        HeartbeatOutcome::Unknown
    );

    let all = c.list_all().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].instance, a);
    assert!(!all[0].registered_at.is_empty() && !all[0].last_heartbeat_at.is_empty());

    c.deregister("catalog", "a").await.unwrap();
    c.deregister("catalog", "a").await.unwrap();
    let (after, set) = c.list("catalog").await.unwrap();
    assert_eq!(ids(&set), ["b"]);
    assert!(after > index);
}

#[tokio::test]
async fn the_client_watches_for_changes() {
    let r = TestRegistry::start(Duration::from_secs(10)).await;
    let c = r.client();
    c.register(&instance("catalog", "a", 1)).await.unwrap();
    let (index, _) = c.list("catalog").await.unwrap();

    // Nothing changes: the watch answers after its wait with the same index.
    let (same, set) = c
        .watch("catalog", index, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!((same, ids(&set)), (index, vec!["a"]));

    let watcher = {
        let c = c.clone();
        tokio::spawn(async move { c.watch("catalog", index, Duration::from_secs(20)).await })
    };
    c.register(&instance("catalog", "b", 2)).await.unwrap();
    let (changed, set) = watcher.await.unwrap().unwrap();
    assert!(changed > index);
    assert_eq!(ids(&set), ["a", "b"]);
}

#[tokio::test]
async fn a_refused_registration_carries_the_problem_detail() {
    let r = TestRegistry::start(Duration::from_secs(10)).await;
    let err = r
        .client()
        .register(&instance("Not Valid", "a", 1))
        .await
        .unwrap_err();
    match err {
        DiscoveryError::Status { status, detail } => {
            assert_eq!(status, 422);
            assert!(detail.contains("invalid"), "{detail}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_stopped_registry_is_unreachable() {
    let r = TestRegistry::start(Duration::from_secs(10)).await;
    let c: RegistryClient = r.client();
    r.stop().await;
    assert!(c.list("catalog").await.unwrap_err().is_unreachable());
}
