use serde_json::{json, Value};

use crate::helpers::{ids, instance, TestRegistry};

#[tokio::test]
async fn registers_lists_heartbeats_and_deregisters_an_instance() {
    let r = TestRegistry::start().await;

    let res = r.register(&instance("catalog", "b", 2)).await;
    assert_eq!(res.status(), 201);
    let lease: Value = res.json().await.unwrap();
    assert_eq!(
        lease,
        json!({"lease_ttl_ms": 10_000, "heartbeat_ms": 3_333})
    );
    assert_eq!(r.register(&instance("catalog", "a", 1)).await.status(), 201);
    assert_eq!(
        r.register(&instance("identity", "z", 3)).await.status(),
        201
    );

    let list = r.list("catalog").await;
    assert_eq!(ids(&list), ["a", "b"]);
    assert!(list["index"].as_u64().unwrap() > 0);
    assert_eq!(
        list["instances"][0],
        json!({"service": "catalog", "instance_id": "a", "http_addr": "127.0.0.1:1", "grpc_addr": null, "version": "", "metadata": {}})
    );

    assert_eq!(r.heartbeat("catalog", "a").await.status(), 204);
    assert_eq!(
        r.list("catalog").await["index"],
        list["index"],
        "a heartbeat changes nothing"
    );

    let res = r
        .http
        .delete(r.url("/v1/instances/catalog/a"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let after = r.list("catalog").await;
    assert_eq!(ids(&after), ["b"]);
    assert!(after["index"].as_u64().unwrap() > list["index"].as_u64().unwrap());

    let res = r
        .http
        .delete(r.url("/v1/instances/catalog/a"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204, "deregistering is idempotent");
    assert_eq!(r.heartbeat("catalog", "a").await.status(), 404);
}

#[tokio::test]
async fn re_registering_replaces_the_instance() {
    let r = TestRegistry::start().await;
    r.register(&instance("catalog", "a", 1)).await;
    let before = r.list("catalog").await;

    r.register(&instance("catalog", "a", 1)).await;
    assert_eq!(
        r.list("catalog").await,
        before,
        "the same instance again changes nothing"
    );

    let mut moved = instance("catalog", "a", 2);
    moved["version"] = json!("2.0.0");
    moved["metadata"] = json!({"zone": "b"});
    r.register(&moved).await;
    let after = r.list("catalog").await;
    assert_eq!(after["instances"].as_array().unwrap().len(), 1);
    assert_eq!(after["instances"][0]["http_addr"], "127.0.0.1:2");
    assert_eq!(after["instances"][0]["metadata"]["zone"], "b");
    assert_ne!(after["index"], before["index"]);
}

#[tokio::test]
async fn an_unknown_service_has_no_instances() {
    let r = TestRegistry::start().await;
    assert_eq!(r.list("nobody").await, json!({"index": 0, "instances": []}));
}

#[tokio::test]
async fn lists_every_instance_with_lease_times() {
    let r = TestRegistry::start().await;
    r.register(&instance("identity", "z", 3)).await;
    r.register(&instance("catalog", "a", 1)).await;
    let all = r.get_json("/v1/instances").await;
    let entries = all["instances"].as_array().unwrap();
    let keys: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["service"].as_str().unwrap(),
                e["instance_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(keys, [("catalog", "a"), ("identity", "z")]);
    for e in entries {
        assert!(e["registered_at"].as_str().unwrap().ends_with('Z'), "{e}");
        assert!(
            e["last_heartbeat_at"].as_str().unwrap().ends_with('Z'),
            "{e}"
        );
    }
    assert!(all["index"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn errors_are_problems() {
    let r = TestRegistry::start().await;
    let res = r.heartbeat("catalog", "nope").await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/problem+json");

    let res = r.http.patch(r.url("/v1/instances")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["content-type"], "application/problem+json");

    let res = r
        .http
        .get(r.url("/v1/services/catalog/instances?index=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn serves_health_endpoints() {
    let r = TestRegistry::start().await;
    for path in ["/livez", "/readyz", "/metrics"] {
        let res = r.http.get(r.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
    }
}
