//! `GET /admin/state`: every charge and refund, for the consistency checker.

use bazaar_psp::http::PspState;
use reqwest::StatusCode;

use crate::helpers::{both, json_of};

both!(the_state_lists_every_charge_and_refund, |app| {
    json_of(
        app.charge("order-a", 1000, "tok_visa").await,
        StatusCode::CREATED,
    )
    .await;
    json_of(
        app.charge("order-b", 300, "tok_declined").await,
        StatusCode::CREATED,
    )
    .await;
    json_of(
        app.refund("refund-a", "order-a", 400).await,
        StatusCode::CREATED,
    )
    .await;

    let admin = app.admin_token();
    let get = |token: Option<String>| {
        let mut req = app.client.get(app.url("/admin/state"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let state: PspState =
        serde_json::from_value(json_of(get(Some(admin)).await.unwrap(), StatusCode::OK).await)
            .unwrap();
    assert_eq!(state.service, "psp");
    let charges: Vec<_> = state
        .charges
        .iter()
        .map(|c| {
            (
                c.idempotency_key.as_str(),
                c.status.as_str(),
                c.amount_minor,
                c.refunded_minor,
                c.card_token.as_str(),
            )
        })
        .collect();
    assert_eq!(
        charges,
        [
            ("order-a", "captured", 1000, 400, "tok_visa"),
            ("order-b", "declined", 300, 0, "tok_declined"),
        ]
    );
    assert!(state.charges.iter().all(|c| c.id.starts_with("ch_")));
    assert_eq!(state.refunds.len(), 1);
    assert_eq!(state.refunds[0].idempotency_key, "refund-a");
    assert_eq!(state.refunds[0].charge_idempotency_key, "order-a");
    assert_eq!(state.refunds[0].amount_minor, 400);

    // Protected like the other admin endpoints.
    let res = get(Some(app.token(&["customer"]))).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = get(None).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
});
