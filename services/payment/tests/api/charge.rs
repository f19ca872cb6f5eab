//! Charge and GetPayment: captured, declined, idempotent, and query-before-retry after a
//! processor timeout.

use std::time::Duration;

use bazaar_proto::payment::PaymentStatus;
use tonic::Code;

use crate::helpers::{both, order_id, types, Options};

both!(
    a_test_card_is_captured_and_announced,
    Options::default(),
    |app| {
        let id = order_id();
        let res = app.charge(&id, 2599, "tok_visa").await.unwrap();
        assert_eq!(res.status(), PaymentStatus::Captured);
        assert_eq!(res.decline_reason, "");
        let view = app.get_payment(&id).await;
        assert_eq!(view.status(), PaymentStatus::Captured);
        assert_eq!(view.captured_minor, 2599);
        assert_eq!(view.refunded_minor, 0);
        assert_eq!(view.attempts, 1);
        let events = app.events_for(&id, 1).await;
        assert_eq!(types(&events), ["bazaar.payment.captured.v1"]);
        assert_eq!(events[0]["data"]["amount"]["amount_minor"], 2599);
        assert_eq!(events[0]["data"]["amount"]["currency"], "USD");
    }
);

both!(
    a_declined_card_is_declined_and_announced,
    Options::default(),
    |app| {
        let id = order_id();
        let res = app.charge(&id, 100, "tok_declined").await.unwrap();
        assert_eq!(res.status(), PaymentStatus::Declined);
        assert_eq!(res.decline_reason, "card_declined");
        let view = app.get_payment(&id).await;
        assert_eq!(view.status(), PaymentStatus::Declined);
        assert_eq!(view.captured_minor, 0);
        let events = app.events_for(&id, 1).await;
        assert_eq!(types(&events), ["bazaar.payment.declined.v1"]);
        assert_eq!(events[0]["data"]["reason"], "card_declined");
    }
);

both!(
    charging_again_returns_the_first_outcome_without_a_second_charge,
    Options::default(),
    |app| {
        let id = order_id();
        app.charge_captured(&id, 1000).await;
        for _ in 0..3 {
            app.charge_captured(&id, 1000).await;
        }
        let declined = order_id();
        app.charge(&declined, 1000, "tok_declined").await.unwrap();
        // Even another card cannot turn a declined order into a second charge.
        let again = app.charge(&declined, 1000, "tok_visa").await.unwrap();
        assert_eq!(again.status(), PaymentStatus::Declined);
        let stats = app.psp_stats().await;
        assert_eq!(stats["charges"], 2);
        assert_eq!(app.get_payment(&id).await.attempts, 1);
        assert_eq!(
            types(&app.events_for(&id, 1).await),
            ["bazaar.payment.captured.v1"]
        );
    }
);

both!(
    concurrent_charges_of_one_order_charge_once,
    Options::default(),
    |app| {
        let id = order_id();
        let calls = (0..6).map(|_| app.charge(&id, 700, "tok_visa"));
        for res in futures::future::join_all(calls).await {
            assert_eq!(res.unwrap().status(), PaymentStatus::Captured);
        }
        assert_eq!(app.psp_stats().await["charges"], 1);
        let events = app.events_for(&id, 1).await;
        assert_eq!(types(&events), ["bazaar.payment.captured.v1"]);
    }
);

both!(
    a_timed_out_charge_is_found_captured_with_exactly_one_provider_charge,
    Options {
        psp_timeout: Duration::from_millis(300),
        ..Options::default()
    },
    |app| {
        let id = order_id();
        let err = app.charge(&id, 4200, "tok_timeout").await.unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
        // GetPayment asks the processor, which recorded the capture before answering late.
        let view = app.get_payment(&id).await;
        assert_eq!(view.status(), PaymentStatus::Captured);
        assert_eq!(view.captured_minor, 4200);
        assert_eq!(view.attempts, 1);
        // Charging again answers from the record: no new attempt, no new charge.
        let again = app.charge(&id, 4200, "tok_timeout").await.unwrap();
        assert_eq!(again.status(), PaymentStatus::Captured);
        assert_eq!(app.get_payment(&id).await.attempts, 1);
        let stats = app.psp_stats().await;
        assert_eq!(stats["charges"], 1);
        assert_eq!(stats["captured"], 1);
        assert_eq!(
            types(&app.events_for(&id, 1).await),
            ["bazaar.payment.captured.v1"]
        );
    }
);

both!(
    a_retried_charge_after_a_timeout_queries_the_provider_first,
    Options {
        psp_timeout: Duration::from_millis(300),
        ..Options::default()
    },
    |app| {
        let id = order_id();
        let err = app.charge(&id, 990, "tok_timeout").await.unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded);
        // No GetPayment in between: Charge itself looks the pending payment up.
        let calls_before = app.psp_stats().await["calls"].as_u64().unwrap();
        let res = app.charge(&id, 990, "tok_timeout").await.unwrap();
        assert_eq!(res.status(), PaymentStatus::Captured);
        let stats = app.psp_stats().await;
        assert_eq!(stats["charges"], 1);
        // One lookup, no second POST.
        assert_eq!(stats["calls"].as_u64().unwrap(), calls_before + 1);
        assert_eq!(app.get_payment(&id).await.attempts, 1);
    }
);

both!(
    the_provider_is_found_through_discovery,
    Options {
        discover_psp: true,
        ..Options::default()
    },
    |app| {
        let id = order_id();
        app.charge_captured(&id, 50).await;
        assert_eq!(app.psp_stats().await["captured"], 1);
    }
);

both!(
    an_order_without_a_payment_is_none,
    Options::default(),
    |app| {
        let view = app.get_payment(&order_id()).await;
        assert_eq!(view.status(), PaymentStatus::None);
        assert_eq!(view.attempts, 0);
        assert_eq!(app.psp_stats().await["calls"], 0);
    }
);

both!(
    invalid_requests_are_refused_without_calling_the_provider,
    Options::default(),
    |app| {
        let err = app.charge("", 100, "tok_visa").await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let err = app.charge(&order_id(), 0, "tok_visa").await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let err = app.charge("a/b", 100, "tok_visa").await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(app.psp_stats().await["calls"], 0);
    }
);

both!(
    an_invalid_card_token_is_a_decline,
    Options::default(),
    |app| {
        let id = order_id();
        let res = app.charge(&id, 100, "4242424242424242").await.unwrap();
        assert_eq!(res.status(), PaymentStatus::Declined);
        assert_eq!(res.decline_reason, "invalid_card");
        assert_eq!(app.psp_stats().await["charges"], 0);
    }
);

both!(
    another_amount_for_a_charged_order_is_refused,
    Options::default(),
    |app| {
        let id = order_id();
        app.charge_captured(&id, 1000).await;
        let err = app.charge(&id, 2000, "tok_visa").await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert_eq!(app.psp_stats().await["charges"], 1);
        assert_eq!(app.get_payment(&id).await.captured_minor, 1000);
    }
);
