//! Events: what inventory writes to its outbox, what it does with the catalog's and the
//! shipping service's events (delivered for real over the feeds backend from stand-in
//! producers), and the demo seed.

use std::{collections::HashMap, sync::Arc, time::Duration};

use bazaar_contracts::{
    demo::{DEMO_STOCK, PRODUCTS},
    events::{MoneyV1, ProductCreatedV1, ShipmentDispatchedV1, ShipmentFailedV1},
    EventPayload,
};
use bazaar_messaging::{Bus, BusConfig};
use bazaar_proto::inventory::ReservationStatus;
use bazaar_runtime::{App, Health, ServiceStack};
use bazaar_store::Db;
use serde_json::{json, Value};
use sqlx::Row;

use crate::helpers::{both, eventually, order, Backend, Options, TestApp};

fn types(outbox: &[(String, Option<String>, Value)]) -> Vec<&str> {
    outbox.iter().map(|(t, _, _)| t.as_str()).collect()
}

both!(
    every_change_publishes_its_events_in_the_same_transaction,
    |app| {
        app.stock("EVT-A", 10).await;
        app.stock("EVT-B", 10).await;
        let before = app.outbox().await.len();
        assert_eq!(before, 2, "one level change per count");

        let o = order();
        app.reserve(&o, &[("EVT-B", 2), ("EVT-A", 1)]).await;
        let out = app.outbox().await;
        let new = &out[before..];
        assert_eq!(
            types(new),
            [
                "bazaar.inventory.level_changed.v1",
                "bazaar.inventory.level_changed.v1",
                "bazaar.inventory.reserved.v1"
            ]
        );
        assert_eq!(new[0].1.as_deref(), Some("EVT-A"));
        assert_eq!(
            new[0].2,
            json!({"sku": "EVT-A", "on_hand": 10, "reserved": 1, "available": 9})
        );
        assert_eq!(new[1].1.as_deref(), Some("EVT-B"));
        assert_eq!(new[2].1.as_deref(), Some(o.as_str()));
        assert_eq!(
            new[2].2,
            json!({"order_id": o, "lines": [{"sku": "EVT-A", "quantity": 1}, {"sku": "EVT-B", "quantity": 2}]})
        );

        // Repeats publish nothing.
        let n = app.outbox().await.len();
        app.reserve(&o, &[("EVT-B", 2), ("EVT-A", 1)]).await;
        assert_eq!(app.outbox().await.len(), n);

        // A refused reservation publishes nothing either.
        app.reserve(&order(), &[("EVT-A", 100)]).await;
        assert_eq!(app.outbox().await.len(), n);

        app.commit(&o).await;
        let out = app.outbox().await;
        assert_eq!(
            types(&out[n..]),
            [
                "bazaar.inventory.level_changed.v1",
                "bazaar.inventory.level_changed.v1",
                "bazaar.inventory.committed.v1"
            ]
        );
        assert_eq!(
            out[n].2,
            json!({"sku": "EVT-A", "on_hand": 9, "reserved": 0, "available": 9})
        );
        assert_eq!(out[n + 2].2["order_id"], o.as_str());
        let n = out.len();
        app.commit(&o).await;
        app.release(&o, "customer_cancelled").await;
        assert_eq!(
            app.outbox().await.len(),
            n,
            "a committed order changes no more"
        );

        let r = order();
        app.reserve(&r, &[("EVT-A", 4)]).await;
        let n = app.outbox().await.len();
        app.release(&r, "payment_declined").await;
        let out = app.outbox().await;
        assert_eq!(
            types(&out[n..]),
            [
                "bazaar.inventory.level_changed.v1",
                "bazaar.inventory.released.v1"
            ]
        );
        assert_eq!(
            out[n + 1].2,
            json!({"order_id": r, "lines": [{"sku": "EVT-A", "quantity": 4}], "reason": "payment_declined"})
        );

        // A tombstone announces a release of nothing.
        let t = order();
        let n = out.len();
        app.release(&t, "customer_cancelled").await;
        let out = app.outbox().await;
        assert_eq!(types(&out[n..]), ["bazaar.inventory.released.v1"]);
        assert_eq!(
            out[n].2,
            json!({"order_id": t, "lines": [], "reason": "customer_cancelled"})
        );

        // A restock publishes the new level.
        app.restock("EVT-A", &json!({"quantity": 3})).await;
        let out = app.outbox().await;
        assert_eq!(out.last().unwrap().0, "bazaar.inventory.level_changed.v1");
        assert_eq!(out.last().unwrap().2["on_hand"], 12);
    }
);

/// A stand-in producer: its own database and bus, serving its feed over HTTP.
struct Producer {
    db: Db,
    bus: Bus,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Producer {
    async fn start(service: &'static str) -> Producer {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_for_service(service, dir.path(), None, bazaar_messaging::MIGRATIONS)
            .await
            .unwrap();
        let bus = Bus::start(
            service,
            db.clone(),
            bazaar_discovery::StaticResolver::new(HashMap::new()),
            BusConfig {
                relay_poll: Duration::from_millis(50),
                ..BusConfig::default()
            },
            tokio_util::sync::CancellationToken::new(),
        )
        .await
        .unwrap();
        let router = ServiceStack::new(service, Health::new()).wrap(bus.routes());
        let app = App::bind("127.0.0.1:0".parse().unwrap(), router)
            .await
            .unwrap();
        let addr = app.local_addr().to_string();
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        Producer {
            db,
            bus,
            addr,
            _dir: dir,
        }
    }

    async fn publish<E: EventPayload>(&self, event: &E) {
        let mut tx = self.db.begin().await.unwrap();
        bazaar_messaging::publish(&mut tx, event).await.unwrap();
        tx.commit().await.unwrap();
        self.bus.notify();
    }
}

async fn with_producers(backend: Backend) -> Option<(TestApp, Producer, Producer)> {
    let catalog = Producer::start("catalog").await;
    let shipping = Producer::start("shipping").await;
    let producers = HashMap::from([
        ("catalog".to_owned(), vec![catalog.addr.clone()]),
        ("shipping".to_owned(), vec![shipping.addr.clone()]),
    ]);
    let app = TestApp::spawn_with(
        backend,
        Options {
            seed_demo: false,
            producers,
        },
    )
    .await?;
    Some((app, catalog, shipping))
}

fn product(sku: &str) -> ProductCreatedV1 {
    ProductCreatedV1 {
        product_id: uuid::Uuid::now_v7().to_string(),
        sku: sku.to_owned(),
        name: "Thing".to_owned(),
        category: "misc".to_owned(),
        price: MoneyV1 {
            amount_minor: 100,
            currency: "USD".to_owned(),
        },
    }
}

async fn consumes_catalog_and_shipping_events(backend: Backend) {
    let Some((app, catalog, shipping)) = with_producers(backend).await else {
        return;
    };
    let app = Arc::new(app);

    // A new product gets a stock record with nothing on hand; a known SKU keeps its stock.
    app.stock("KEEP-1", 5).await;
    catalog.publish(&product("new-1")).await;
    catalog.publish(&product("KEEP-1")).await;
    catalog.publish(&product("new-1")).await;
    catalog.publish(&product("not a sku")).await;
    catalog.publish(&product("LAST-1")).await;
    eventually("the last product's stock record", || {
        let app = app.clone();
        async move { (app.get_levels("LAST-1").await.status() == 200).then_some(()) }
    })
    .await;
    assert_eq!(app.levels("NEW-1").await, (0, 0, 0));
    assert_eq!(app.levels("KEEP-1").await, (5, 0, 5));
    let dead: Vec<String> = sqlx::query("SELECT type FROM msg_dead_letters")
        .fetch_all(app.store.reader())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        dead,
        [ProductCreatedV1::TYPE],
        "the malformed SKU is dead-lettered"
    );

    // Dispatched commits, failed releases, each once however often it is delivered.
    app.stock("SHP-1", 10).await;
    let (shipped, failed) = (order(), order());
    app.reserve(&shipped, &[("SHP-1", 3)]).await;
    app.reserve(&failed, &[("SHP-1", 2)]).await;
    assert_eq!(app.levels("SHP-1").await, (10, 5, 5));
    let dispatched = ShipmentDispatchedV1 {
        order_id: shipped.clone(),
        user_id: "u".into(),
        shipment_id: "s1".into(),
        tracking_number: "T1".into(),
    };
    shipping.publish(&dispatched).await;
    shipping.publish(&dispatched).await;
    shipping
        .publish(&ShipmentFailedV1 {
            order_id: failed.clone(),
            user_id: "u".into(),
            shipment_id: "s2".into(),
            reason: "carrier_rejected_postal_code".into(),
        })
        .await;
    eventually("the shipments to be applied", || {
        let app = app.clone();
        async move { (app.levels("SHP-1").await == (7, 0, 7)).then_some(()) }
    })
    .await;
    assert_eq!(app.commit(&shipped).await, ReservationStatus::Committed);
    assert_eq!(app.commit(&failed).await, ReservationStatus::Released);
    let reason: String = sqlx::query("SELECT reason FROM reservations WHERE order_id = $1")
        .bind(&failed)
        .fetch_one(app.store.reader())
        .await
        .unwrap()
        .get(0);
    assert_eq!(reason, "shipment_failed");
    let ledger = app.ledger("SHP-1").await;
    assert_eq!(ledger["consistent"], true);
    let commits = ledger["movements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "commit")
        .count();
    assert_eq!(commits, 1);
    // The handlers published through inventory's outbox.
    let out = app.outbox().await;
    assert!(out
        .iter()
        .any(|(t, s, _)| t == "bazaar.inventory.committed.v1"
            && s.as_deref() == Some(shipped.as_str())));
    assert!(out
        .iter()
        .any(|(t, s, d)| t == "bazaar.inventory.released.v1"
            && s.as_deref() == Some(failed.as_str())
            && d["reason"] == "shipment_failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumes_catalog_and_shipping_events_on_sqlite() {
    consumes_catalog_and_shipping_events(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumes_catalog_and_shipping_events_on_postgres() {
    consumes_catalog_and_shipping_events(Backend::Postgres).await;
}

async fn seeds_the_demo_stock_once(backend: Backend) {
    let Some(db) = crate::helpers::TestDb::new(backend) else {
        return;
    };
    let db = Arc::new(db);
    let app = TestApp::start(
        db.clone(),
        Options {
            seed_demo: true,
            ..Options::default()
        },
    )
    .await;
    for p in PRODUCTS {
        assert_eq!(
            app.levels(p.sku).await,
            (DEMO_STOCK, 0, DEMO_STOCK),
            "{}",
            p.sku
        );
        app.assert_consistent(p.sku).await;
    }
    let levels = app.outbox().await;
    assert_eq!(levels.len(), PRODUCTS.len());
    assert!(levels
        .iter()
        .all(|(t, _, _)| t == "bazaar.inventory.level_changed.v1"));
    // A second start on the same database (a restart) seeds nothing more.
    let sku = PRODUCTS[0].sku;
    app.reserve(&order(), &[(sku, 1)]).await;
    let again = TestApp::start(
        db,
        Options {
            seed_demo: true,
            ..Options::default()
        },
    )
    .await;
    assert_eq!(again.levels(sku).await, (DEMO_STOCK, 1, DEMO_STOCK - 1));
    assert_eq!(again.outbox().await.len(), PRODUCTS.len() + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seeds_the_demo_stock_once_on_sqlite() {
    seeds_the_demo_stock_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seeds_the_demo_stock_once_on_postgres() {
    seeds_the_demo_stock_once(Backend::Postgres).await;
}
