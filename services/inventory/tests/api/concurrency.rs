//! Racing calls: never oversold, never negative, every unit accounted for.

use std::collections::HashMap;

use bazaar_proto::inventory::ReservationStatus;
use futures::future::join_all;
use serde_json::json;
use sqlx::Row;

use crate::helpers::{both, order};

both!(
    two_hundred_racing_reservations_sell_exactly_the_stock,
    |app| {
        app.stock("HOT-1", 50).await;
        let calls = (0..200).map(|_| {
            let app = &app;
            async move {
                let o = order();
                let res = app.reserve(&o, &[("HOT-1", 1)]).await;
                (o, res.status())
            }
        });
        let results = join_all(calls).await;
        let reserved: Vec<&String> = results
            .iter()
            .filter(|(_, s)| *s == ReservationStatus::Reserved)
            .map(|(o, _)| o)
            .collect();
        let refused = results
            .iter()
            .filter(|(_, s)| *s == ReservationStatus::OutOfStock)
            .count();
        assert_eq!(reserved.len(), 50);
        assert_eq!(refused, 150);
        assert_eq!(app.levels("HOT-1").await, (50, 50, 0));
        let levels = app.assert_consistent("HOT-1").await;
        assert_eq!(levels.reserved_from_ledger, 50);
        let held: i64 = sqlx::query(
            "SELECT CAST(COALESCE(SUM(l.quantity), 0) AS BIGINT) FROM reservation_lines l \
         JOIN reservations r ON r.order_id = l.order_id WHERE r.status = 'reserved' AND l.sku = $1",
        )
        .bind("HOT-1")
        .fetch_one(app.store.reader())
        .await
        .unwrap()
        .get(0);
        assert_eq!(held, 50);

        // Racing commits and releases of the winners: half ship, half are cancelled.
        let settle = reserved.iter().enumerate().map(|(i, o)| {
            let app = &app;
            async move {
                if i % 2 == 0 {
                    assert_eq!(app.commit(o).await, ReservationStatus::Committed);
                } else {
                    assert_eq!(
                        app.release(o, "customer_cancelled").await,
                        ReservationStatus::Released
                    );
                }
            }
        });
        join_all(settle).await;
        assert_eq!(app.levels("HOT-1").await, (25, 0, 25));
        app.assert_consistent("HOT-1").await;
    }
);

both!(racing_repeats_of_one_order_hold_its_stock_once, |app| {
    app.stock("DUP-1", 100).await;
    let o = order();
    let calls = (0..50).map(|_| app.reserve(&o, &[("DUP-1", 3)]));
    for res in join_all(calls).await {
        assert_eq!(res.status(), ReservationStatus::Reserved);
    }
    assert_eq!(app.levels("DUP-1").await, (100, 3, 97));
    let calls = (0..50).map(|_| app.commit(&o));
    for status in join_all(calls).await {
        assert_eq!(status, ReservationStatus::Committed);
    }
    assert_eq!(app.levels("DUP-1").await, (97, 0, 97));
    app.assert_consistent("DUP-1").await;
});

both!(a_release_racing_its_reserve_never_strands_stock, |app| {
    app.stock("RACE-1", 1000).await;
    let orders: Vec<String> = (0..60).map(|_| order()).collect();
    let calls = orders.iter().map(|o| {
        let app = &app;
        async move {
            let (reserved, released) = tokio::join!(
                app.reserve(o, &[("RACE-1", 2)]),
                app.release(o, "customer_cancelled")
            );
            assert!(
                matches!(
                    reserved.status(),
                    ReservationStatus::Reserved | ReservationStatus::Released
                ),
                "{reserved:?}"
            );
            assert_eq!(released, ReservationStatus::Released);
        }
    });
    join_all(calls).await;
    // Whichever came first, the order ends released and holds nothing.
    assert_eq!(app.levels("RACE-1").await, (1000, 0, 1000));
    app.assert_consistent("RACE-1").await;
});

both!(a_mixed_workload_on_many_skus_conserves_every_unit, |app| {
    let skus = ["MIX-A", "MIX-B", "MIX-C", "MIX-D"];
    for sku in skus {
        app.stock(sku, 40).await;
    }
    // Orders of 1–3 lines over overlapping SKUs, listed in varying orders, so concurrent
    // transactions want the same rows in different sequences.
    let orders: Vec<(String, Vec<(&str, i64)>)> = (0..120)
        .map(|i: usize| {
            let n = 1 + i % 3;
            let lines = (0..n)
                .map(|k| {
                    (
                        skus[(i * 7 + k * (1 + i % 2)) % 4],
                        1 + ((i + k) % 3) as i64,
                    )
                })
                .collect();
            (order(), lines)
        })
        .collect();
    let reserve = orders.iter().map(|(o, lines)| {
        let app = &app;
        async move { app.reserve(o, lines).await.status() }
    });
    let restock = (0..20).map(|i| {
        let app = &app;
        async move {
            let res = app.restock(skus[i % 4], &json!({"quantity": 5})).await;
            assert_eq!(res.status(), reqwest::StatusCode::OK);
        }
    });
    let (statuses, ()) = tokio::join!(join_all(reserve), async {
        join_all(restock).await;
    });
    assert!(statuses.iter().all(|s| matches!(
        s,
        ReservationStatus::Reserved | ReservationStatus::OutOfStock
    )));
    assert!(statuses.contains(&ReservationStatus::Reserved));
    // Ship every third winner, cancel the rest, all at once.
    let settle = orders
        .iter()
        .zip(&statuses)
        .enumerate()
        .filter(|(_, (_, s))| **s == ReservationStatus::Reserved)
        .map(|(i, ((o, lines), _))| {
            let app = &app;
            async move {
                if i % 3 == 0 {
                    app.commit(o).await;
                    lines.clone()
                } else {
                    app.release(o, "payment_declined").await;
                    Vec::new()
                }
            }
        });
    let mut shipped: HashMap<&str, i64> = HashMap::new();
    for lines in join_all(settle).await {
        for (sku, q) in lines {
            *shipped.entry(sku).or_default() += q;
        }
    }
    for sku in skus {
        let restocked = 5 * 5;
        let expected = 40 + restocked - shipped.get(sku).copied().unwrap_or(0);
        assert_eq!(app.levels(sku).await, (expected, 0, expected), "{sku}");
        app.assert_consistent(sku).await;
    }
});
