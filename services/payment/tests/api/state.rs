//! `GET /admin/state`: every payment as stored, for the consistency checker.

use bazaar_payment::http::PaymentState;
use reqwest::StatusCode;

use crate::helpers::{both, json_of, order_id, Options};

both!(
    the_state_shows_every_payment_as_stored,
    Options::default(),
    |app| {
        let captured = order_id();
        app.charge_captured(&captured, 1234).await;
        let declined = order_id();
        app.charge(&declined, 500, "tok_declined").await.unwrap();
        let refunded = order_id();
        app.charge_captured(&refunded, 700).await;
        app.refund(&refunded, "cancelled").await.unwrap();

        let body = json_of(
            app.get_as("/admin/state", Some(&app.admin_token())).await,
            StatusCode::OK,
        )
        .await;
        let state: PaymentState = serde_json::from_value(body).unwrap();
        assert_eq!(state.service, "payment");
        assert_eq!(state.payments.len(), 3);
        let find = |id: &str| state.payments.iter().find(|p| p.order_id == id).unwrap();

        let p = find(&captured);
        assert_eq!(p.status, "captured");
        assert_eq!(
            (p.amount_minor, p.captured_minor, p.refunded_minor),
            (1234, 1234, 0)
        );
        assert_eq!(p.currency, "USD");
        assert_eq!(p.card_token, "tok_visa");
        assert_eq!(p.psp_charge_key, format!("order-{captured}"));
        assert!(
            p.psp_charge_id
                .as_deref()
                .is_some_and(|c| c.starts_with("ch_")),
            "{p:?}"
        );
        assert_eq!(p.attempts, 1);

        let p = find(&declined);
        assert_eq!((p.status.as_str(), p.captured_minor), ("declined", 0));

        let p = find(&refunded);
        assert_eq!(p.status, "refunded");
        assert_eq!((p.captured_minor, p.refunded_minor), (700, 700));

        assert!(state.refund_requests.is_empty());
        // Without the double-charge failpoint, one charge per order at the processor.
        assert_eq!(app.psp_stats().await["charges"], 3);
        // Three outcomes and a refund published; the shipping.failed subscription is listed.
        assert_eq!(state.messaging.dead_letters, 0);
        assert!(state
            .messaging
            .subscriptions
            .iter()
            .any(|s| s.subscription == "payment.shipping_failed"));

        // Admins only.
        let res = app
            .get_as("/admin/state", Some(&app.token(&["customer"])))
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let res = app.get_as("/admin/state", None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
);
