//! `bazaar load` against a real shop: the open-model run, its JSON report and its record.

use std::{collections::HashSet, time::Duration};

use serde_json::Value;

use crate::support::{Shop, ADMIN_PASSWORD};

#[tokio::test]
async fn a_short_load_places_orders_that_the_record_names_and_the_shop_knows() {
    let shop = Shop::start().await;
    let record = shop.data_dir().join("load.jsonl");
    // The target comes from the shop's run.json through --data-dir.
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_bazaar"))
        .arg("load")
        .arg("--data-dir")
        .arg(shop.data_dir())
        .args(["--rate", "20", "--duration", "5s", "--users", "5", "--json"])
        .args(["--slo", "errors<50%", "--admin-password", ADMIN_PASSWORD])
        .arg("--record")
        .arg(&record)
        .env_remove("BAZAAR_ADMIN_PASSWORD")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("bazaar load finished in time")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stderr}", out.status);

    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(report["scheduled"], 100, "{report}");
    assert_eq!(report["dropped"], 0, "{report}");
    assert_eq!(report["target"], shop.gateway);
    let placed = &report["operations"]["place_order"];
    assert!(placed["2xx"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["slos"][0]["slo"], "errors<50%");
    assert_eq!(report["slos"][0]["met"], true);

    // The record: a header, then every attempt; every final 2xx placement names its order.
    let text = std::fs::read_to_string(&record).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["kind"], "header");
    assert_eq!(lines[0]["seed"], 1);
    assert_eq!(lines[0]["rate"], 20.0);
    assert!(lines[0]["started_unix_ms"].as_u64().unwrap() > 0);
    let attempts = &lines[1..];
    assert!(attempts.iter().all(|a| a["kind"] == "attempt"));
    let finals = attempts.iter().filter(|a| a["final"] == true).count() as u64;
    assert_eq!(finals, report["total"]["count"].as_u64().unwrap());
    let orders: Vec<&Value> = attempts
        .iter()
        .filter(|a| {
            a["op"] == "place_order"
                && a["final"] == true
                && a["status"]
                    .as_u64()
                    .is_some_and(|s| (200..300).contains(&s))
        })
        .collect();
    assert_eq!(orders.len() as u64, placed["2xx"].as_u64().unwrap());
    let mut keys = HashSet::new();
    for o in &orders {
        assert!(o["order_id"].is_string(), "{o}");
        assert!(o["user"].is_string(), "{o}");
        assert!(o["items"].as_array().is_some_and(|i| !i.is_empty()), "{o}");
        assert!(
            keys.insert(o["key"].as_str().unwrap().to_owned()),
            "a key per order"
        );
    }

    // The shop knows the order, for its customer and as the admin sees it.
    let order = orders[0];
    let id = order["order_id"].as_str().unwrap();
    let admin = shop.admin_token().await;
    let res = shop
        .client
        .get(shop.url(&format!("/api/v1/orders/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["id"], id);
    assert_eq!(
        body["items"].as_array().unwrap().len(),
        order["items"].as_array().unwrap().len()
    );
}
