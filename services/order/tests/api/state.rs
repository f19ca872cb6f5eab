//! `GET /admin/state`: every order with its lines and saga, and every idempotency key, for
//! the consistency checker.

use bazaar_order::http::{IdempotencyKeyRecord, OrderItemRecord, OrderState};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{body, both, eventually_some, problem, P1, P2};

both!(the_state_shows_orders_sagas_and_keys, |env| {
    let app = env.start("a").await;
    let user = app.customer();
    let res = app
        .place_with(
            &user,
            Some("state-1"),
            &body(&[(P1.0, 2), (P2.0, 1)], "tok_visa"),
            &[("Prefer", "wait=20")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let confirmed: Value = res.json().await.unwrap();
    assert_eq!(confirmed["status"], "confirmed", "{confirmed:#}");
    let confirmed = confirmed["id"].as_str().unwrap().to_owned();
    let declined = app
        .place_ok(&user, &body(&[(P1.0, 1)], "tok_declined"))
        .await;
    let declined = declined["id"].as_str().unwrap().to_owned();
    app.wait_status(&user, &declined, "rejected").await;

    let admin = app.admin();
    let state: OrderState = eventually_some(|| async {
        let res = app.get(&admin, "/admin/state").await;
        assert_eq!(res.status(), StatusCode::OK);
        let state: OrderState = res.json().await.unwrap();
        let settled = state
            .orders
            .iter()
            .all(|o| o.saga.as_ref().is_some_and(|s| s.status == "done"));
        settled.then_some(state)
    })
    .await
    .expect("the sagas never finished");
    assert_eq!(state.service, "order");
    assert_eq!(state.orders.len(), 2);
    let o = state.orders.iter().find(|o| o.id == confirmed).unwrap();
    assert_eq!(o.user_id, user.id);
    assert_eq!(
        (o.status.as_str(), o.status_reason.as_deref()),
        ("confirmed", None)
    );
    assert_eq!(
        (o.total_minor, o.currency.as_str()),
        (2 * P1.2 + P2.2, "USD")
    );
    assert_eq!(
        (o.payment_status.as_str(), o.shipment_status.as_str()),
        ("captured", "none")
    );
    assert!(!o.cancel_requested && !o.shipment_claimed);
    assert_eq!(
        o.items,
        [
            OrderItemRecord {
                product_id: P1.0.to_owned(),
                sku: P1.1.to_owned(),
                quantity: 2,
            },
            OrderItemRecord {
                product_id: P2.0.to_owned(),
                sku: P2.1.to_owned(),
                quantity: 1,
            },
        ]
    );
    let saga = o.saga.as_ref().unwrap();
    assert_eq!(saga.status, "done");
    assert!(saga.last_error.is_none(), "{saga:?}");

    let o = state.orders.iter().find(|o| o.id == declined).unwrap();
    assert_eq!(o.status, "rejected");
    assert_eq!(o.status_reason.as_deref(), Some("payment_declined"));
    assert_eq!(o.payment_status, "declined");

    let key = state
        .idempotency_keys
        .iter()
        .find(|k| k.key == "state-1")
        .unwrap();
    assert_eq!(
        *key,
        IdempotencyKeyRecord {
            user_id: user.id.clone(),
            key: "state-1".to_owned(),
            order_id: Some(confirmed.clone()),
        }
    );
    assert_eq!(state.idempotency_keys.len(), 2);
    assert!(state
        .messaging
        .subscriptions
        .iter()
        .any(|s| s.subscription == "order.payments"));

    // Admins only.
    problem(app.get(&user, "/admin/state").await, StatusCode::FORBIDDEN).await;
});
