//! `GET /admin/state`: the account count and the bus's tables, for the consistency checker.

use bazaar_identity::IdentityState;
use reqwest::StatusCode;

use crate::helpers::TestApp;

on_both_backends!(the_state_counts_accounts_and_registration_events);

async fn the_state_counts_accounts_and_registration_events(app: TestApp) {
    let (_, customer) = app.customer().await;
    app.customer().await;
    let admin = app.admin_token().await;

    let res = app.get("/admin/state", Some(&admin)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let state: IdentityState = res.json().await.unwrap();
    assert_eq!(state.service, "identity");
    // The bootstrapped admin and two customers.
    assert_eq!(state.users, 3);
    let messaging = state.messaging.unwrap();
    assert!(messaging.subscriptions.is_empty(), "{messaging:?}");
    assert_eq!(messaging.dead_letters_total, 0);

    let res = app.get("/admin/state", Some(&customer)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app.get("/admin/state", None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}
