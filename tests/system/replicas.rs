//! `bazaar up --replicas`: several instances of a service on one database, each registered on
//! its own, with traffic balanced across them and no work done twice — also when one of
//! them is killed in the middle of its sagas.

use serde_json::Value;

use crate::{
    orders::{customer, eventually, order_body, payment, place, products, wait_status, Customer},
    support::Shop,
};

const REPLICAS: &str = "order=2,inventory=2,payment=2,gateway=2";

async fn instances(shop: &Shop, service: &str) -> Vec<String> {
    let v: Value = shop
        .client
        .get(format!("{}/v1/services/{service}/instances", shop.registry))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = v
        .get("instances")
        .unwrap_or(&v)
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut ids: Vec<String> = list
        .iter()
        .filter_map(|i| i["instance_id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

/// Places an order as a real client does: a 502/503/504 (the instance that had the request
/// died) is retried with the same Idempotency-Key and body, which can only ever create one
/// order.
async fn place_retrying(shop: &Shop, who: &Customer, key: &str, body: &Value) -> Value {
    for _ in 0..10 {
        let res = place(shop, who, key, body, None).await;
        match res.status().as_u16() {
            201 => return res.json().await.unwrap(),
            502..=504 => tokio::time::sleep(std::time::Duration::from_millis(300)).await,
            other => panic!("placing {key}: {other} {:?}", res.text().await),
        }
    }
    panic!("placing {key}: still failing after 10 attempts");
}

async fn replicas_share_the_work_and_survive_a_kill(shop: Shop) {
    // Every replica is its own process and registered under its own id.
    let run = shop.run_file();
    let mut running: Vec<String> = run["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["instance_id"].as_str().unwrap().to_owned())
        .collect();
    running.sort();
    for id in [
        "order-1",
        "order-2",
        "inventory-2",
        "payment-2",
        "gateway-2",
    ] {
        assert!(running.iter().any(|r| r == id), "{id} in {running:?}");
    }
    assert_eq!(instances(&shop, "order").await, ["order-1", "order-2"]);
    assert_eq!(
        instances(&shop, "inventory").await,
        ["inventory-1", "inventory-2"]
    );
    assert_eq!(
        instances(&shop, "payment").await,
        ["payment-1", "payment-2"]
    );

    let who = customer(&shop).await;
    let admin = shop.admin_token().await;
    let items = products(&shop, 4).await;
    let place_batch = |tag: &'static str| {
        let shop = &shop;
        let who = &who;
        let items = &items;
        async move {
            let mut ids = Vec::new();
            for i in 0..12 {
                let pid = items[i % items.len()]["id"].as_str().unwrap();
                let order = place_retrying(
                    shop,
                    who,
                    &format!("{tag}-{i}"),
                    &order_body(pid, 1, "tok_visa", "10115"),
                )
                .await;
                ids.push(order["id"].as_str().unwrap().to_owned());
            }
            ids
        }
    };
    let mut ids = place_batch("calm").await;

    // One order instance dies with sagas in flight; the other and its restart finish them.
    let in_flight = place_batch("killed").await;
    let victim = shop.process("order")["pid"].as_u64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    ids.extend(in_flight);
    ids.extend(place_batch("after").await);

    for id in &ids {
        let order = wait_status(&shop, &who, id, &["shipped"]).await;
        assert_eq!(order["payment"]["status"], "captured", "{id}");
        // One charge per order, whichever payment replica took it.
        let p = payment(&shop, &admin, id).await;
        assert_eq!(
            p["captured_minor"], order["total"]["amount_minor"],
            "{id}: {p}"
        );
        assert_eq!(p["refunded_minor"], 0, "{id}");
    }
    // Both gateways and the killed instance's restart are back in the registry.
    eventually(30, "order-1 to re-register", || async {
        (instances(&shop, "order").await == ["order-1", "order-2"]).then_some(())
    })
    .await;
    let exits = std::fs::read_to_string(shop.data_dir().join("exits.jsonl")).unwrap();
    let exit: Value = serde_json::from_str(exits.lines().next().unwrap()).unwrap();
    assert_eq!(exit["instance_id"], "order-1");
    assert_eq!(exit["signal"], 9);
}

mod replicas_share_the_work_and_survive_a_kill {
    #[tokio::test]
    async fn on_feeds_and_sqlite() {
        let shop = crate::orders::feeds_shop(&[("BAZAAR_REPLICAS", super::REPLICAS)]).await;
        super::replicas_share_the_work_and_survive_a_kill(shop).await;
    }

    #[tokio::test]
    async fn on_nats_and_postgres() {
        let Some(shop) = crate::orders::nats_shop(&[("BAZAAR_REPLICAS", super::REPLICAS)]).await
        else {
            return;
        };
        super::replicas_share_the_work_and_survive_a_kill(shop).await;
    }
}
