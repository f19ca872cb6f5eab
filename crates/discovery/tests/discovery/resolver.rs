use std::{collections::HashMap, sync::Arc, time::Duration};

use bazaar_discovery::{RegistryClient, RegistryResolver, Resolver, StaticResolver};

use crate::helpers::{eventually, ids, instance, TestRegistry};

const TTL: Duration = Duration::from_secs(30);

async fn resolved(r: &Arc<RegistryResolver>, service: &str) -> Vec<String> {
    ids(&r.resolve(service).await)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_first_resolve_waits_for_the_registry_and_later_changes_are_picked_up() {
    let reg = TestRegistry::start(TTL).await;
    let c = reg.client();
    c.register(&instance("catalog", "a", 1)).await.unwrap();
    let resolver = RegistryResolver::new(c.clone());

    assert_eq!(resolved(&resolver, "catalog").await, ["a"]);

    c.register(&instance("catalog", "b", 2)).await.unwrap();
    eventually("the new instance is seen", || async {
        resolved(&resolver, "catalog").await == ["a", "b"]
    })
    .await;

    c.deregister("catalog", "a").await.unwrap();
    eventually("the removed instance is gone", || async {
        resolved(&resolver, "catalog").await == ["b"]
    })
    .await;
}

#[tokio::test]
async fn the_resolver_keeps_the_last_known_set_while_the_registry_is_down() {
    let reg = TestRegistry::start(TTL).await;
    let addr = reg.addr;
    let c = reg.client();
    c.register(&instance("catalog", "a", 1)).await.unwrap();
    let resolver = RegistryResolver::new(c.clone());
    assert_eq!(resolved(&resolver, "catalog").await, ["a"]);

    reg.stop().await;
    // Long enough for the watch to fail and for several retries with backoff.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(resolved(&resolver, "catalog").await, ["a"]);

    // The registry comes back (empty, as after a restart) and instances register again.
    let reg = TestRegistry::start_on(addr, TTL).await;
    let c = reg.client();
    c.register(&instance("catalog", "a", 1)).await.unwrap();
    c.register(&instance("catalog", "b", 2)).await.unwrap();
    eventually("the resolver follows the new registry", || async {
        resolved(&resolver, "catalog").await == ["a", "b"]
    })
    .await;
}

#[tokio::test]
async fn resolving_with_no_registry_returns_an_empty_set_instead_of_hanging() {
    let reg = TestRegistry::start(TTL).await;
    let addr = reg.addr;
    reg.stop().await;
    let resolver = RegistryResolver::new(RegistryClient::new(&format!("http://{addr}")));
    assert!(resolver.resolve("catalog").await.is_empty());
}

#[tokio::test]
async fn resolvers_are_usable_as_trait_objects() {
    let resolvers: Vec<Arc<dyn Resolver>> = vec![
        StaticResolver::new(HashMap::from([(
            "catalog".to_owned(),
            vec!["127.0.0.1:7".to_owned()],
        )])),
        RegistryResolver::new(RegistryClient::new("http://127.0.0.1:1")),
    ];
    assert_eq!(ids(&resolvers[0].resolve("catalog").await), ["127.0.0.1:7"]);
}

#[tokio::test]
async fn after_a_registry_restart_instances_not_yet_re_registered_are_kept_for_a_grace_period() {
    let reg = TestRegistry::start(TTL).await;
    let addr = reg.addr;
    let c = reg.client();
    c.register(&instance("catalog", "a", 1)).await.unwrap();
    c.register(&instance("catalog", "b", 2)).await.unwrap();
    let resolver = RegistryResolver::new(c.clone());
    assert_eq!(resolved(&resolver, "catalog").await, ["a", "b"]);

    reg.stop().await;
    let reg = TestRegistry::start_on(addr, TTL).await;
    // Only one instance has registered again so far.
    reg.client()
        .register(&instance("catalog", "b", 2))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(resolved(&resolver, "catalog").await, ["a", "b"]);
}

#[tokio::test]
async fn after_the_grace_period_the_registry_answer_stands_alone() {
    let reg = TestRegistry::start(TTL).await;
    let addr = reg.addr;
    let c = reg.client();
    c.register(&instance("catalog", "a", 1)).await.unwrap();
    let resolver = RegistryResolver::with_restart_grace(c.clone(), Duration::from_millis(300));
    assert_eq!(resolved(&resolver, "catalog").await, ["a"]);

    reg.stop().await;
    let reg = TestRegistry::start_on(addr, TTL).await;
    reg.client()
        .register(&instance("catalog", "b", 2))
        .await
        .unwrap();
    eventually("the instance that never came back is dropped", || async {
        resolved(&resolver, "catalog").await == ["b"]
    })
    .await;
}
