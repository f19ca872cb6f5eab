#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `inventory.reserve.after_commit`: a Reserve whose answer is lost after its transaction
//! committed. The caller's retry must get the recorded outcome, with the stock held once.
//! (Its own test binary: failpoints are read from the environment once per process.)

use std::{collections::HashMap, sync::Arc};

use bazaar_auth::{JwkSet, SigningKey, Verifier};
use bazaar_inventory::{build, grpc::RESERVE_AFTER_COMMIT, Settings};
use bazaar_proto::inventory::{
    inventory_client::InventoryClient, Line, ReservationStatus, ReserveRequest,
};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reserve_whose_answer_was_lost_is_answered_again_on_retry() {
    std::env::set_var("BAZAAR_FAILPOINTS", format!("{RESERVE_AFTER_COMMIT}=error"));
    bazaar_runtime::telemetry::init_for_tests();
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let app = build(Settings {
        addr: "127.0.0.1:0".parse().unwrap(),
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        database_url: None,
        seed_demo: true,
        verifier: Arc::new(Verifier::with_keys(JwkSet {
            keys: vec![key.public_jwk()],
        })),
        resolver: bazaar_discovery::StaticResolver::new(HashMap::new()),
        bus: bazaar_messaging::BusConfig::default(),
    })
    .await
    .unwrap();
    let grpc_addr = app.grpc_addr().unwrap();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let mut client = InventoryClient::connect(format!("http://{grpc_addr}"))
        .await
        .unwrap();
    let sku = bazaar_contracts::demo::PRODUCTS[0].sku;
    let request = || ReserveRequest {
        order_id: "order-lost-answer".into(),
        lines: vec![Line {
            sku: sku.into(),
            quantity: 7,
        }],
    };
    let err = client.reserve(request()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    // The retry finds the committed reservation (and does not hit the failpoint again,
    // since it changes nothing).
    let res = client.reserve(request()).await.unwrap().into_inner();
    assert_eq!(res.status(), ReservationStatus::Reserved);
    let db = bazaar_store::Db::open_for_service("inventory", dir.path(), None, &[])
        .await
        .unwrap();
    let reserved: i64 = sqlx::Row::get(
        &sqlx::query("SELECT reserved FROM stock WHERE sku = $1")
            .bind(sku)
            .fetch_one(db.reader())
            .await
            .unwrap(),
        0,
    );
    assert_eq!(reserved, 7, "held once");
}
