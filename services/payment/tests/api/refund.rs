//! Refund: once, idempotent, nothing to refund for unpaid orders.

use std::time::Duration;

use bazaar_proto::payment::PaymentStatus;
use serde_json::json;
use tonic::Code;

use crate::helpers::{both, order_id, types, Options};

both!(a_capture_is_refunded_once, Options::default(), |app| {
    let id = order_id();
    app.charge_captured(&id, 1500).await;
    let res = app.refund(&id, "customer_cancelled").await.unwrap();
    assert_eq!(res.status(), PaymentStatus::Refunded);
    assert_eq!(res.refunded_minor, 1500);
    let again = app.refund(&id, "customer_cancelled").await.unwrap();
    assert_eq!(again, res);
    let view = app.get_payment(&id).await;
    assert_eq!(view.status(), PaymentStatus::Refunded);
    assert_eq!(view.captured_minor, 1500);
    assert_eq!(view.refunded_minor, 1500);
    assert_eq!(app.psp_stats().await["refunds"], 1);
    let events = app.events_for(&id, 2).await;
    assert_eq!(
        types(&events),
        ["bazaar.payment.captured.v1", "bazaar.payment.refunded.v1"]
    );
    assert_eq!(events[1]["data"]["reason"], "customer_cancelled");
    assert_eq!(events[1]["data"]["amount"]["amount_minor"], 1500);
    // A refunded order is not charged again.
    let charge = app.charge(&id, 1500, "tok_visa").await.unwrap();
    assert_eq!(charge.status(), PaymentStatus::Refunded);
    assert_eq!(app.psp_stats().await["charges"], 1);
});

both!(concurrent_refunds_refund_once, Options::default(), |app| {
    let id = order_id();
    app.charge_captured(&id, 800).await;
    let calls = (0..5).map(|_| app.refund(&id, ""));
    for res in futures::future::join_all(calls).await {
        let res = res.unwrap();
        assert_eq!(res.status(), PaymentStatus::Refunded);
        assert_eq!(res.refunded_minor, 800);
    }
    assert_eq!(app.psp_stats().await["refunds"], 1);
    let events = app.events_for(&id, 2).await;
    assert_eq!(
        types(&events),
        ["bazaar.payment.captured.v1", "bazaar.payment.refunded.v1"]
    );
    assert_eq!(events[1]["data"]["reason"], "requested");
});

both!(
    unpaid_orders_have_nothing_to_refund,
    Options::default(),
    |app| {
        let none = app.refund(&order_id(), "customer_cancelled").await.unwrap();
        assert_eq!(none.status(), PaymentStatus::None);
        assert_eq!(none.refunded_minor, 0);
        let declined = order_id();
        app.charge(&declined, 100, "tok_declined").await.unwrap();
        let res = app.refund(&declined, "customer_cancelled").await.unwrap();
        assert_eq!(res.status(), PaymentStatus::Declined);
        assert_eq!(res.refunded_minor, 0);
        assert_eq!(app.psp_stats().await["refunds"], 0);
    }
);

both!(
    a_pending_payment_is_settled_before_it_is_refunded,
    Options {
        psp_timeout: Duration::from_millis(300),
        ..Options::default()
    },
    |app| {
        let id = order_id();
        let err = app.charge(&id, 600, "tok_timeout").await.unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded);
        let res = app.refund(&id, "customer_cancelled").await.unwrap();
        assert_eq!(res.status(), PaymentStatus::Refunded);
        assert_eq!(res.refunded_minor, 600);
        assert_eq!(app.psp_stats().await["refunds"], 1);
    }
);

both!(
    a_refund_while_the_provider_is_down_is_unavailable_and_can_be_retried,
    Options::default(),
    |app| {
        let id = order_id();
        app.charge_captured(&id, 300).await;
        app.psp_behave(json!({"down": true})).await;
        let err = app.refund(&id, "customer_cancelled").await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
        assert_eq!(app.get_payment(&id).await.status(), PaymentStatus::Captured);
        app.psp_behave(json!({"down": false})).await;
        let res = app.refund(&id, "customer_cancelled").await.unwrap();
        assert_eq!(res.status(), PaymentStatus::Refunded);
        assert_eq!(app.psp_stats().await["refunds"], 1);
    }
);

both!(a_bad_reason_is_refused, Options::default(), |app| {
    let err = app.refund(&order_id(), "Because!").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
});
