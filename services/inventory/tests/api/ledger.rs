//! Random sequences of counts, restocks, reservations, releases and commits, checked after
//! every step against a model and against the database: the levels match the model,
//! `on_hand = Σ adjustments + Σ commits`, `reserved = Σ reserves + Σ releases + Σ commits`,
//! and `0 ≤ reserved ≤ on_hand`.

use std::{
    collections::{BTreeMap, HashMap},
    sync::atomic::{AtomicUsize, Ordering},
};

use bazaar_proto::inventory::ReservationStatus;
use proptest::{prelude::*, test_runner::TestRunner};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{db_levels, Backend, TestApp};

const SKUS: usize = 3;
const ORDERS: usize = 5;

#[derive(Debug, Clone)]
enum Op {
    Count {
        sku: usize,
        on_hand: i64,
    },
    Restock {
        sku: usize,
        quantity: i64,
    },
    Reserve {
        order: usize,
        lines: Vec<(usize, i64)>,
    },
    Release {
        order: usize,
    },
    Commit {
        order: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..SKUS, 0i64..12).prop_map(|(sku, on_hand)| Op::Count { sku, on_hand }),
        (0..SKUS, 1i64..6).prop_map(|(sku, quantity)| Op::Restock { sku, quantity }),
        (0..ORDERS, prop::collection::vec((0..SKUS, 1i64..5), 1..4))
            .prop_map(|(order, lines)| Op::Reserve { order, lines }),
        (0..ORDERS).prop_map(|order| Op::Release { order }),
        (0..ORDERS).prop_map(|order| Op::Commit { order }),
    ]
}

/// What the API promises, as plain data.
#[derive(Debug, Default)]
struct Model {
    /// sku index -> (on_hand, reserved); absent = no record.
    stock: HashMap<usize, (i64, i64)>,
    /// order index -> (status, held lines merged per SKU).
    orders: HashMap<usize, (ReservationStatus, BTreeMap<usize, i64>)>,
}

struct Names {
    skus: Vec<String>,
    orders: Vec<String>,
}

async fn step(app: &TestApp, names: &Names, model: &mut Model, op: &Op) -> Result<(), String> {
    macro_rules! check {
        ($cond:expr, $($msg:tt)*) => {
            if !$cond {
                return Err(format!($($msg)*));
            }
        };
    }
    match op {
        Op::Count { sku, on_hand } => {
            let res = app
                .put(&names.skus[*sku], &json!({ "on_hand": on_hand }))
                .await;
            let reserved = model.stock.get(sku).map_or(0, |s| s.1);
            if *on_hand < reserved {
                check!(
                    res.status() == StatusCode::CONFLICT,
                    "count {op:?}: {}",
                    res.status()
                );
            } else {
                check!(
                    res.status() == StatusCode::OK,
                    "count {op:?}: {}",
                    res.status()
                );
                model.stock.insert(*sku, (*on_hand, reserved));
            }
        }
        Op::Restock { sku, quantity } => {
            let res = app
                .restock(&names.skus[*sku], &json!({ "quantity": quantity }))
                .await;
            match model.stock.get_mut(sku) {
                None => check!(
                    res.status() == StatusCode::NOT_FOUND,
                    "restock {op:?}: {}",
                    res.status()
                ),
                Some(s) => {
                    check!(
                        res.status() == StatusCode::OK,
                        "restock {op:?}: {}",
                        res.status()
                    );
                    s.0 += quantity;
                }
            }
        }
        Op::Reserve { order, lines } => {
            let wire: Vec<(&str, i64)> = lines
                .iter()
                .map(|(sku, q)| (names.skus[*sku].as_str(), *q))
                .collect();
            let res = app.reserve(&names.orders[*order], &wire).await;
            let mut merged: BTreeMap<usize, i64> = BTreeMap::new();
            for (sku, q) in lines {
                *merged.entry(*sku).or_default() += q;
            }
            let expected = match model.orders.get(order) {
                Some((status, _)) => *status,
                None => {
                    let fits = merged
                        .iter()
                        .all(|(sku, q)| model.stock.get(sku).is_some_and(|(h, r)| h - r >= *q));
                    if fits {
                        for (sku, q) in &merged {
                            if let Some(s) = model.stock.get_mut(sku) {
                                s.1 += q;
                            }
                        }
                        model
                            .orders
                            .insert(*order, (ReservationStatus::Reserved, merged));
                        ReservationStatus::Reserved
                    } else {
                        model
                            .orders
                            .insert(*order, (ReservationStatus::OutOfStock, BTreeMap::new()));
                        ReservationStatus::OutOfStock
                    }
                }
            };
            check!(
                res.status() == expected,
                "reserve {op:?}: got {:?}, expected {expected:?}",
                res.status()
            );
        }
        Op::Release { order } => {
            let got = app.release(&names.orders[*order], "test").await;
            let entry = model
                .orders
                .entry(*order)
                .or_insert((ReservationStatus::Released, BTreeMap::new()));
            let expected = match entry.0 {
                ReservationStatus::Reserved => {
                    for (sku, q) in std::mem::take(&mut entry.1) {
                        if let Some(s) = model.stock.get_mut(&sku) {
                            s.1 -= q;
                        }
                    }
                    entry.0 = ReservationStatus::Released;
                    ReservationStatus::Released
                }
                ReservationStatus::OutOfStock => {
                    entry.0 = ReservationStatus::Released;
                    ReservationStatus::Released
                }
                other => other,
            };
            check!(
                got == expected,
                "release {op:?}: got {got:?}, expected {expected:?}"
            );
        }
        Op::Commit { order } => {
            let got = app.commit(&names.orders[*order]).await;
            let expected = match model.orders.get_mut(order) {
                None => ReservationStatus::NotFound,
                Some(entry) if entry.0 == ReservationStatus::Reserved => {
                    for (sku, q) in std::mem::take(&mut entry.1) {
                        if let Some(s) = model.stock.get_mut(&sku) {
                            s.0 -= q;
                            s.1 -= q;
                        }
                    }
                    entry.0 = ReservationStatus::Committed;
                    ReservationStatus::Committed
                }
                Some(entry) => entry.0,
            };
            check!(
                got == expected,
                "commit {op:?}: got {got:?}, expected {expected:?}"
            );
        }
    }
    // The database agrees with the model and with its own ledger.
    for (i, sku) in names.skus.iter().enumerate() {
        let db = db_levels(&app.store, sku).await;
        let (on_hand, reserved) = model.stock.get(&i).copied().unwrap_or((0, 0));
        check!(
            db.on_hand == on_hand && db.reserved == reserved,
            "after {op:?}: {sku} is {db:?}, model ({on_hand}, {reserved})"
        );
        check!(
            0 <= db.reserved && db.reserved <= db.on_hand,
            "after {op:?}: {sku} out of bounds: {db:?}"
        );
        check!(
            db.on_hand == db.on_hand_from_ledger,
            "after {op:?}: {sku} on_hand disagrees with the ledger: {db:?}"
        );
        check!(
            db.reserved == db.reserved_from_ledger,
            "after {op:?}: {sku} reserved disagrees with the ledger: {db:?}"
        );
    }
    Ok(())
}

fn run(backend: Backend) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Some(app) = rt.block_on(TestApp::spawn(backend)) else {
        return;
    };
    // Every case gets its own SKUs and orders on the one running service.
    let case = AtomicUsize::new(0);
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 24,
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    });
    runner
        .run(&prop::collection::vec(op(), 1..30), |ops| {
            let n = case.fetch_add(1, Ordering::Relaxed);
            let names = Names {
                skus: (0..SKUS).map(|i| format!("PT{n}-{i}")).collect(),
                orders: (0..ORDERS).map(|i| format!("pt-{n}-order-{i}")).collect(),
            };
            let mut model = Model::default();
            rt.block_on(async {
                for op in &ops {
                    step(&app, &names, &mut model, op)
                        .await
                        .map_err(TestCaseError::fail)?;
                }
                Ok(())
            })
        })
        .unwrap();
}

#[test]
fn random_histories_keep_the_ledger_invariant_on_sqlite() {
    run(Backend::Sqlite);
}

#[test]
fn random_histories_keep_the_ledger_invariant_on_postgres() {
    run(Backend::Postgres);
}
