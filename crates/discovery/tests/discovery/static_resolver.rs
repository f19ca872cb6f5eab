use std::collections::HashMap;

use bazaar_discovery::{Resolver, StaticResolver};

fn map(service: &str, addrs: &[&str]) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        service.to_owned(),
        addrs.iter().map(|a| (*a).to_owned()).collect(),
    )])
}

#[tokio::test]
async fn an_ip_address_is_one_instance() {
    let r = StaticResolver::new(map(
        "catalog",
        &["127.0.0.1:1234", "127.0.0.1:1235", "not an address"],
    ));
    let set = r.resolve("catalog").await;
    assert_eq!(set.len(), 2);
    assert_eq!(set[0].service, "catalog");
    assert_eq!(set[0].instance_id, "127.0.0.1:1234");
    assert_eq!(set[0].http_addr, "127.0.0.1:1234");
    assert_eq!(set[1].http_addr, "127.0.0.1:1235");
    assert!(r.resolve("identity").await.is_empty());
}

#[tokio::test]
async fn a_host_name_is_resolved_to_one_instance_per_address() {
    let r = StaticResolver::new(map("catalog", &["localhost:1234"]));
    let set = r.resolve("catalog").await;
    assert!(!set.is_empty(), "localhost resolves");
    for i in set.iter() {
        let addr: std::net::SocketAddr = i.http_addr.parse().unwrap();
        assert!(addr.ip().is_loopback(), "{addr}");
        assert_eq!(addr.port(), 1234);
        assert_eq!(i.instance_id, i.http_addr);
    }
    // Later calls answer from the cache.
    assert_eq!(r.resolve("catalog").await, set);
}
