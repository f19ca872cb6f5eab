//! Reserve, Release and Commit over real gRPC: idempotent per order id, all or nothing.

use bazaar_proto::inventory::ReservationStatus;
use tonic::Code;

use crate::helpers::{both, order};

both!(
    a_reservation_holds_stock_and_a_repeat_holds_nothing_more,
    |app| {
        app.stock("IDM-1", 10).await;
        let o = order();
        for _ in 0..3 {
            let res = app.reserve(&o, &[("IDM-1", 4)]).await;
            assert_eq!(res.status(), ReservationStatus::Reserved);
            assert!(res.short_skus.is_empty());
            assert_eq!(app.levels("IDM-1").await, (10, 4, 6));
        }
        // Same order id, other lines: still the recorded outcome.
        let res = app.reserve(&o, &[("IDM-1", 9)]).await;
        assert_eq!(res.status(), ReservationStatus::Reserved);
        assert_eq!(app.levels("IDM-1").await, (10, 4, 6));
        app.assert_consistent("IDM-1").await;
    }
);

both!(release_is_idempotent_and_gives_stock_back_once, |app| {
    app.stock("REL-1", 10).await;
    let o = order();
    app.reserve(&o, &[("REL-1", 4)]).await;
    for _ in 0..3 {
        assert_eq!(
            app.release(&o, "payment_declined").await,
            ReservationStatus::Released
        );
        assert_eq!(app.levels("REL-1").await, (10, 0, 10));
    }
    // A released order cannot be reserved again.
    let res = app.reserve(&o, &[("REL-1", 4)]).await;
    assert_eq!(res.status(), ReservationStatus::Released);
    assert_eq!(app.levels("REL-1").await, (10, 0, 10));
    app.assert_consistent("REL-1").await;
});

both!(commit_is_idempotent_and_takes_stock_out_once, |app| {
    app.stock("COM-1", 10).await;
    let o = order();
    app.reserve(&o, &[("COM-1", 4)]).await;
    for _ in 0..3 {
        assert_eq!(app.commit(&o).await, ReservationStatus::Committed);
        assert_eq!(app.levels("COM-1").await, (6, 0, 6));
    }
    let res = app.reserve(&o, &[("COM-1", 4)]).await;
    assert_eq!(res.status(), ReservationStatus::Committed);
    assert_eq!(app.levels("COM-1").await, (6, 0, 6));
    app.assert_consistent("COM-1").await;
});

both!(a_release_before_the_reserve_leaves_a_tombstone, |app| {
    app.stock("TMB-1", 10).await;
    let o = order();
    assert_eq!(
        app.release(&o, "customer_cancelled").await,
        ReservationStatus::Released
    );
    let res = app.reserve(&o, &[("TMB-1", 4)]).await;
    assert_eq!(res.status(), ReservationStatus::Released);
    assert_eq!(app.levels("TMB-1").await, (10, 0, 10));
    assert_eq!(app.commit(&o).await, ReservationStatus::Released);
    assert_eq!(app.levels("TMB-1").await, (10, 0, 10));
    app.assert_consistent("TMB-1").await;
});

both!(final_states_do_not_change, |app| {
    app.stock("FIN-1", 10).await;
    let (released, committed) = (order(), order());
    app.reserve(&released, &[("FIN-1", 2)]).await;
    app.reserve(&committed, &[("FIN-1", 3)]).await;
    app.release(&released, "payment_declined").await;
    app.commit(&committed).await;
    assert_eq!(app.levels("FIN-1").await, (7, 0, 7));
    assert_eq!(app.commit(&released).await, ReservationStatus::Released);
    assert_eq!(
        app.release(&committed, "customer_cancelled").await,
        ReservationStatus::Committed
    );
    assert_eq!(app.levels("FIN-1").await, (7, 0, 7));
    app.assert_consistent("FIN-1").await;
});

both!(committing_an_unknown_order_is_not_found, |app| {
    assert_eq!(app.commit(&order()).await, ReservationStatus::NotFound);
});

both!(a_reservation_is_all_or_nothing, |app| {
    app.stock("AON-A", 5).await;
    app.stock("AON-B", 1).await;
    app.stock("AON-C", 5).await;
    let o = order();
    let res = app
        .reserve(
            &o,
            &[("AON-A", 2), ("AON-B", 2), ("AON-C", 2), ("AON-X", 1)],
        )
        .await;
    assert_eq!(res.status(), ReservationStatus::OutOfStock);
    assert_eq!(
        res.short_skus,
        ["AON-B", "AON-X"],
        "unknown SKUs are short too"
    );
    for (sku, on_hand) in [("AON-A", 5), ("AON-B", 1), ("AON-C", 5)] {
        assert_eq!(app.levels(sku).await, (on_hand, 0, on_hand), "{sku}");
        app.assert_consistent(sku).await;
    }
    // The refusal is recorded: a retry answers the same even once stock has arrived.
    app.stock("AON-B", 10).await;
    let again = app
        .reserve(&o, &[("AON-A", 2), ("AON-B", 2), ("AON-C", 2)])
        .await;
    assert_eq!(again.status(), ReservationStatus::OutOfStock);
    assert_eq!(again.short_skus, ["AON-B", "AON-X"]);
    assert_eq!(app.levels("AON-A").await, (5, 0, 5));
    // Releasing a refused order moves no stock and ends it.
    assert_eq!(
        app.release(&o, "out_of_stock").await,
        ReservationStatus::Released
    );
    assert_eq!(app.commit(&o).await, ReservationStatus::Released);
    assert_eq!(app.levels("AON-B").await, (10, 0, 10));

    // With enough of everything, every line is held in one go.
    let ok = order();
    let res = app
        .reserve(
            &ok,
            &[("aon-a", 2), ("AON-B", 2), ("AON-C", 5), ("AON-A", 3)],
        )
        .await;
    assert_eq!(res.status(), ReservationStatus::Reserved);
    assert_eq!(
        app.levels("AON-A").await,
        (5, 5, 0),
        "lines of one SKU add up"
    );
    assert_eq!(app.levels("AON-B").await, (10, 2, 8));
    assert_eq!(app.levels("AON-C").await, (5, 5, 0));
    assert_eq!(app.commit(&ok).await, ReservationStatus::Committed);
    assert_eq!(app.levels("AON-A").await, (0, 0, 0));
    assert_eq!(app.levels("AON-B").await, (8, 0, 8));
    for sku in ["AON-A", "AON-B", "AON-C"] {
        app.assert_consistent(sku).await;
    }
});

both!(available_stock_can_be_reserved_to_the_last_unit, |app| {
    app.stock("LST-1", 3).await;
    let res = app.reserve(&order(), &[("LST-1", 3)]).await;
    assert_eq!(res.status(), ReservationStatus::Reserved);
    let res = app.reserve(&order(), &[("LST-1", 1)]).await;
    assert_eq!(res.status(), ReservationStatus::OutOfStock);
    assert_eq!(res.short_skus, ["LST-1"]);
    assert_eq!(app.levels("LST-1").await, (3, 3, 0));
});

both!(
    invalid_calls_are_invalid_argument_and_change_nothing,
    |app| {
        app.stock("INV-1", 10).await;
        let cases: Vec<(&str, Vec<(&str, i64)>)> = vec![
            ("", vec![("INV-1", 1)]),
            ("order with spaces", vec![("INV-1", 1)]),
            ("o-1", vec![]),
            ("o-2", vec![("INV-1", 0)]),
            ("o-3", vec![("INV-1", -5)]),
            ("o-4", vec![("INV-1", 1), ("INV-1", 0)]),
            ("o-5", vec![("not a sku", 1)]),
            ("o-6", vec![("INV-1", 1_000_001)]),
        ];
        for (o, lines) in &cases {
            let err = app.try_reserve(o, lines).await.unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{o:?} {lines:?}");
        }
        let mut grpc = app.grpc.clone();
        let err = grpc
            .release(bazaar_proto::inventory::ReleaseRequest {
                order_id: String::new(),
                reason: "x".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let err = grpc
            .release(bazaar_proto::inventory::ReleaseRequest {
                order_id: "o-7".into(),
                reason: "bad\u{0}reason".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let err = grpc
            .commit(bazaar_proto::inventory::CommitRequest {
                order_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        // None of the refused orders left a record: they can still be reserved.
        for (o, _) in cases.iter().filter(|(o, _)| o.starts_with("o-")) {
            let res = app.reserve(o, &[("INV-1", 1)]).await;
            assert_eq!(res.status(), ReservationStatus::Reserved, "{o}");
        }
        assert_eq!(app.levels("INV-1").await, (10, 6, 4));
    }
);
