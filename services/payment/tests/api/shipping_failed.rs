//! `bazaar.shipping.failed.v1` → refund, through a real event feed served by a stand-in
//! shipping producer (its own database, outbox and bus).

use std::collections::HashMap;

use bazaar_contracts::events::ShipmentFailedV1;
use bazaar_messaging::{Bus, BusConfig};
use bazaar_proto::payment::PaymentStatus;
use bazaar_runtime::{App, Health, ServiceStack};
use bazaar_store::Db;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::helpers::{eventually, order_id, types, Backend, Options, TestApp};

/// A `shipping` service that only publishes events.
struct Shipping {
    addr: String,
    db: Db,
    bus: Bus,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
    _bus_stop: tokio_util::sync::DropGuard,
}

impl Shipping {
    async fn start() -> Shipping {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_for_service("shipping", dir.path(), None, bazaar_messaging::MIGRATIONS)
            .await
            .unwrap();
        let stop = CancellationToken::new();
        let bus = Bus::start(
            "shipping",
            db.clone(),
            bazaar_discovery::StaticResolver::new(HashMap::new()),
            BusConfig::default(),
            stop.clone(),
        )
        .await
        .unwrap();
        let router = ServiceStack::new("shipping", Health::new()).wrap(bus.routes());
        let app = App::bind("127.0.0.1:0".parse().unwrap(), router)
            .await
            .unwrap();
        let addr = app.local_addr().to_string();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        Shipping {
            addr,
            db,
            bus,
            _dir: dir,
            _stop: tx,
            _bus_stop: stop.drop_guard(),
        }
    }

    async fn failed(&self, order_id: &str) {
        let mut tx = self.db.begin().await.unwrap();
        bazaar_messaging::publish(
            &mut tx,
            &ShipmentFailedV1 {
                order_id: order_id.to_owned(),
                user_id: "u-1".to_owned(),
                shipment_id: uuid::Uuid::now_v7().to_string(),
                reason: "carrier_rejected_postal_code".to_owned(),
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        self.bus.notify();
    }
}

async fn spawn(backend: Backend) -> Option<(Shipping, TestApp)> {
    let shipping = Shipping::start().await;
    let app = TestApp::spawn(
        backend,
        Options {
            shipping_addr: Some(shipping.addr.clone()),
            ..Options::default()
        },
    )
    .await?;
    Some((shipping, app))
}

async fn wait_refunded(app: &TestApp, id: &str) {
    eventually(|| async {
        (app.get_payment(id).await.status() == PaymentStatus::Refunded).then_some(())
    })
    .await;
}

async fn a_failed_shipment_is_refunded_once(backend: Backend) {
    let Some((shipping, app)) = spawn(backend).await else {
        return;
    };
    let id = order_id();
    app.charge_captured(&id, 2500).await;
    shipping.failed(&id).await;
    wait_refunded(&app, &id).await;
    // The same news again (another event), then a barrier: the feed is consumed in order,
    // so once the second order is refunded the duplicate has been handled.
    shipping.failed(&id).await;
    let barrier = order_id();
    app.charge_captured(&barrier, 10).await;
    shipping.failed(&barrier).await;
    wait_refunded(&app, &barrier).await;
    let view = app.get_payment(&id).await;
    assert_eq!(view.refunded_minor, 2500);
    assert_eq!(app.psp_stats().await["refunds"], 2);
    let events = app.events_for(&id, 2).await;
    assert_eq!(
        types(&events),
        ["bazaar.payment.captured.v1", "bazaar.payment.refunded.v1"]
    );
    assert_eq!(events[1]["data"]["reason"], "shipment_failed");
}

#[tokio::test]
async fn a_failed_shipment_is_refunded_once_on_sqlite() {
    a_failed_shipment_is_refunded_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_failed_shipment_is_refunded_once_on_postgres() {
    a_failed_shipment_is_refunded_once(Backend::Postgres).await;
}

#[tokio::test]
async fn a_refund_the_provider_cannot_make_yet_is_retried_until_it_can() {
    let (shipping, app) = spawn(Backend::Sqlite).await.unwrap();
    let id = order_id();
    app.charge_captured(&id, 700).await;
    app.psp_behave(json!({"down": true})).await;
    shipping.failed(&id).await;
    // The worker has tried (the provider saw calls) but could not refund.
    let calls = app.psp_stats().await["calls"].as_u64().unwrap();
    eventually(|| async {
        (app.psp_stats().await["calls"].as_u64().unwrap() > calls).then_some(())
    })
    .await;
    assert_eq!(app.get_payment(&id).await.status(), PaymentStatus::Captured);
    // Nothing was dead-lettered: the event was applied (as a request), the refund waits.
    let dead = app
        .get_as("/admin/dead-letters", Some(&app.admin_token()))
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(dead["items"].as_array().map(Vec::len), Some(0), "{dead}");
    app.psp_behave(json!({"down": false})).await;
    wait_refunded(&app, &id).await;
    assert_eq!(app.psp_stats().await["refunds"], 1);
}

#[tokio::test]
async fn a_failed_shipment_of_an_unpaid_order_refunds_nothing() {
    let (shipping, app) = spawn(Backend::Sqlite).await.unwrap();
    let unpaid = order_id();
    shipping.failed(&unpaid).await;
    let barrier = order_id();
    app.charge_captured(&barrier, 10).await;
    shipping.failed(&barrier).await;
    wait_refunded(&app, &barrier).await;
    assert_eq!(app.get_payment(&unpaid).await.status(), PaymentStatus::None);
    assert_eq!(app.psp_stats().await["refunds"], 1);
}
