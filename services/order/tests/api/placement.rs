//! The placement saga end to end: reserve, charge, confirm, and every way it can go.

use std::{sync::atomic::Ordering, time::Duration};

use reqwest::{header, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{body, both, eventually, history, P1, P2};

both!(
    an_order_is_confirmed_and_prefer_wait_returns_the_outcome,
    |env| {
        let app = env.start("a").await;
        let user = app.customer();
        let res = app
            .place_with(
                &user,
                Some("happy"),
                &body(&[(P1.0, 2), (P2.0, 1)], "tok_visa"),
                &[("Prefer", "wait=20")],
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(res.headers()["preference-applied"], "wait=20");
        let location = res.headers()[header::LOCATION].to_str().unwrap().to_owned();
        let order: Value = res.json().await.unwrap();
        let id = order["id"].as_str().unwrap();
        assert_eq!(location, format!("/api/v1/orders/{id}"));
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
        assert_eq!(order["status"], "confirmed", "{order:#}");
        assert_eq!(order["status_reason"], Value::Null);
        assert_eq!(order["payment"], json!({"status": "captured"}));
        assert_eq!(
            order["shipment"],
            json!({"status": "none", "tracking_number": null})
        );
        assert_eq!(history(&order), ["pending", "confirmed"]);
        assert_eq!(order["history"][0]["reason"], Value::Null);
        assert_eq!(
            order["items"][0],
            json!({"product_id": P1.0, "sku": P1.1, "name": "Moka pot",
               "unit_price": {"amount_minor": 1299, "currency": "USD"}, "quantity": 2,
               "line_total": {"amount_minor": 2598, "currency": "USD"}})
        );
        assert_eq!(
            order["total"],
            json!({"amount_minor": 3098, "currency": "USD"})
        );
        assert_eq!(
            order["shipping_address"],
            json!({"name": "Ada Lovelace", "line1": "1 Analytical St", "line2": null,
               "city": "London", "postal_code": "N1 9GU", "country": "GB"})
        );
        assert!(order.get("card_token").is_none() && !order.to_string().contains("tok_visa"));
        for field in ["created_at", "updated_at"] {
            let t = order[field].as_str().unwrap();
            assert!(
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                    .is_ok()
            );
        }
        assert_eq!(app.order(&user, id).await, order);
        assert_eq!(env.fakes.inventory.log.of(id), ["reserve"]);
        assert_eq!(env.fakes.payment.log.of(id), ["charge"]);

        // A wait above 30 s is treated as 30 s.
        let res = app
            .place_with(
                &user,
                Some("happy-2"),
                &body(&[(P1.0, 1)], "tok_visa"),
                &[("Prefer", "respond-async, wait=600")],
            )
            .await;
        assert_eq!(res.headers()["preference-applied"], "wait=30");
        let order: Value = res.json().await.unwrap();
        assert_eq!(order["status"], "confirmed");
    }
);

both!(without_prefer_wait_the_order_is_answered_pending, |env| {
    let app = env.start("a").await;
    let user = app.customer();
    env.fakes.inventory.reserve_gate.close();
    let res = app
        .place_with(&user, Some("k"), &body(&[(P1.0, 1)], "tok_visa"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.headers().get("preference-applied").is_none());
    let order: Value = res.json().await.unwrap();
    assert_eq!(order["status"], "pending");
    assert_eq!(order["payment"]["status"], "none");
    env.fakes.inventory.reserve_gate.open();
    app.wait_status(&user, order["id"].as_str().unwrap(), "confirmed")
        .await;
});

both!(an_order_without_stock_is_rejected_out_of_stock, |env| {
    let app = env.start("a").await;
    let user = app.customer();
    env.fakes.inventory.set_stock(P1.1, 1);
    let res = app
        .place_with(
            &user,
            Some("k"),
            &body(&[(P1.0, 2)], "tok_visa"),
            &[("Prefer", "wait=20")],
        )
        .await;
    let order: Value = res.json().await.unwrap();
    let id = order["id"].as_str().unwrap();
    assert_eq!(order["status"], "rejected");
    assert_eq!(order["status_reason"], "out_of_stock");
    assert_eq!(history(&order), ["pending", "rejected"]);
    assert_eq!(order["history"][1]["reason"], "out_of_stock");
    assert_eq!(
        env.fakes.payment.log.of(id),
        Vec::<String>::new(),
        "never charged"
    );
    assert_eq!(app.saga(id).await["status"], "done");
});

both!(a_declined_card_releases_the_stock, |env| {
    let app = env.start("a").await;
    let user = app.customer();
    env.fakes.inventory.set_stock(P1.1, 5);
    let res = app
        .place_with(
            &user,
            Some("k"),
            &body(&[(P1.0, 2)], "tok_declined"),
            &[("Prefer", "wait=20")],
        )
        .await;
    let order: Value = res.json().await.unwrap();
    let id = order["id"].as_str().unwrap().to_owned();
    let order = app.wait_status(&user, &id, "rejected").await;
    assert_eq!(order["status_reason"], "payment_declined");
    assert_eq!(order["payment"]["status"], "declined");
    assert_eq!(
        env.fakes.inventory.log.of(&id),
        ["reserve", "release:payment_declined"]
    );
    assert!(!env.fakes.inventory.holds(&id));
    assert_eq!(
        env.fakes.inventory.stock.lock().unwrap()[P1.1],
        5,
        "stock given back"
    );
    assert_eq!(env.fakes.payment.log.of(&id), ["charge"]);
});

both!(
    an_unavailable_provider_makes_the_order_wait_then_confirm,
    |env| {
        let app = env.start("a").await;
        let user = app.customer();
        env.fakes.payment.psp_down.store(true, Ordering::SeqCst);
        let res = app
            .place_with(
                &user,
                Some("k"),
                &body(&[(P1.0, 1)], "tok_visa"),
                &[("Prefer", "wait=20")],
            )
            .await;
        let order: Value = res.json().await.unwrap();
        let id = order["id"].as_str().unwrap().to_owned();
        assert_eq!(order["status"], "payment_pending", "{order:#}");
        assert_eq!(order["payment"]["status"], "pending");
        // It keeps trying.
        assert!(eventually(|| async { env.fakes.payment.log.count(&id, "charge") >= 3 }).await);
        let saga = app.saga(&id).await;
        assert_eq!(saga["status"], "running");
        assert_eq!(saga["step"], "charge");
        assert!(saga["deadline_at"].is_string());
        env.fakes.payment.psp_down.store(false, Ordering::SeqCst);
        let order = app.wait_status(&user, &id, "confirmed").await;
        assert_eq!(history(&order), ["pending", "payment_pending", "confirmed"]);
        assert_eq!(order["payment"]["status"], "captured");
        assert_eq!(env.fakes.inventory.log.of(&id), ["reserve"]);
    }
);

both!(
    past_the_payment_deadline_the_order_is_rejected_and_released,
    |env| {
        let mut env = env;
        env.payment_pending_deadline = Duration::from_secs(1);
        let app = env.start("a").await;
        let user = app.customer();
        env.fakes.payment.psp_down.store(true, Ordering::SeqCst);
        let order = app.place_ok(&user, &body(&[(P2.0, 4)], "tok_visa")).await;
        let id = order["id"].as_str().unwrap().to_owned();
        let order = app.wait_status(&user, &id, "rejected").await;
        assert_eq!(order["status_reason"], "payment_unavailable");
        assert_eq!(history(&order), ["pending", "payment_pending", "rejected"]);
        assert_eq!(
            env.fakes.inventory.log.of(&id),
            ["reserve", "release:payment_unavailable"]
        );
        assert!(!env.fakes.inventory.holds(&id));
        assert_eq!(
            env.fakes.payment.log.count(&id, "refund"),
            1,
            "a late capture would be refunded"
        );
        assert_eq!(
            env.fakes.payment.status(&id),
            bazaar_proto::payment::PaymentStatus::None
        );
    }
);

both!(
    a_charge_that_times_out_is_looked_up_before_any_retry,
    |env| {
        let app = env.start("a").await;
        let user = app.customer();
        // The provider captures but answers too late.
        let order = app
            .place_ok(&user, &body(&[(P1.0, 1)], "tok_timeout"))
            .await;
        let id = order["id"].as_str().unwrap().to_owned();
        let order = app.wait_status(&user, &id, "confirmed").await;
        assert_eq!(order["payment"]["status"], "captured");
        assert_eq!(env.fakes.payment.log.of(&id), ["charge", "get_payment"]);
    }
);

both!(a_lost_charge_is_looked_up_then_charged_once_more, |env| {
    let app = env.start("a").await;
    let user = app.customer();
    // The first charge never reaches the provider and nobody answers in time.
    let order = app.place_ok(&user, &body(&[(P1.0, 1)], "tok_lost")).await;
    let id = order["id"].as_str().unwrap().to_owned();
    app.wait_status(&user, &id, "confirmed").await;
    let calls = env.fakes.payment.log.of(&id);
    assert_eq!(calls, ["charge", "get_payment", "charge"]);
});
