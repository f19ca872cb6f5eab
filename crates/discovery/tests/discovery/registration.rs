use std::time::Duration;

use bazaar_discovery::{Registration, RegistryClient};

use crate::helpers::{eventually, ids, instance, TestRegistry};

const TTL: Duration = Duration::from_millis(300);

async fn listed(c: &RegistryClient, service: &str) -> Vec<String> {
    match c.list(service).await {
        Ok((_, set)) => ids(&set).into_iter().map(str::to_owned).collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test]
async fn a_registration_outlives_its_lease_ttl_by_heartbeating() {
    // A TTL long enough that a briefly starved test process still heartbeats in time.
    let ttl = Duration::from_secs(1);
    let r = TestRegistry::start(ttl).await;
    let c = r.client();
    let reg = Registration::start(c.clone(), instance("catalog", "a", 1)).await;
    assert_eq!(
        listed(&c, "catalog").await,
        ["a"],
        "the first registration is awaited"
    );

    // Several TTLs later the instance is still there.
    tokio::time::sleep(ttl * 3).await;
    assert_eq!(listed(&c, "catalog").await, ["a"]);

    reg.stop().await;
    assert!(listed(&c, "catalog").await.is_empty(), "stop deregisters");
}

#[tokio::test]
async fn a_registration_re_registers_after_the_registry_restarts() {
    let r = TestRegistry::start(TTL).await;
    let addr = r.addr;
    let reg = Registration::start(r.client(), instance("catalog", "a", 1)).await;
    assert_eq!(listed(&r.client(), "catalog").await, ["a"]);

    // A restart loses every lease; the next heartbeat is refused and the instance registers
    // again.
    r.stop().await;
    let r = TestRegistry::start_on(addr, TTL).await;
    let c = r.client();
    eventually("the instance is registered again", || async {
        listed(&c, "catalog").await == ["a"]
    })
    .await;

    reg.stop().await;
    assert!(listed(&c, "catalog").await.is_empty());
}

#[tokio::test]
async fn a_registration_started_while_the_registry_is_down_registers_once_it_is_up() {
    // Find a free port, then leave it closed.
    let r = TestRegistry::start(TTL).await;
    let addr = r.addr;
    r.stop().await;

    let reg = Registration::start(
        RegistryClient::new(&format!("http://{addr}")),
        instance("catalog", "a", 1),
    )
    .await;
    let r = TestRegistry::start_on(addr, TTL).await;
    let c = r.client();
    eventually("the instance registers", || async {
        listed(&c, "catalog").await == ["a"]
    })
    .await;
    reg.stop().await;
}

#[tokio::test]
async fn stop_returns_even_when_the_registry_is_gone() {
    let r = TestRegistry::start(TTL).await;
    let reg = Registration::start(r.client(), instance("catalog", "a", 1)).await;
    r.stop().await;
    reg.stop().await;
}
