//! Customer cancellation and shipping's claim: one referee between them.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{body, both, eventually, history, problem, P1};

both!(cancelling_a_pending_order_compensates_once, |env| {
    let app = env.start("a").await;
    let user = app.customer();
    env.fakes.inventory.reserve_gate.close();
    let order = app.place_ok(&user, &body(&[(P1.0, 1)], "tok_visa")).await;
    let id = order["id"].as_str().unwrap().to_owned();
    // The reservation is under way when the customer cancels.
    assert!(eventually(|| async { env.fakes.inventory.log.count(&id, "reserve") >= 1 }).await);
    let res = app
        .post(&user, &format!("/api/v1/orders/{id}/cancel"))
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(accepted["id"], id.as_str());
    env.fakes.inventory.reserve_gate.open();
    let order = app.wait_status(&user, &id, "cancelled").await;
    assert_eq!(order["status_reason"], "customer_cancelled");
    assert_eq!(history(&order), ["pending", "cancelled"]);
    // Let anything still running finish before counting.
    assert!(eventually(|| async { app.saga(&id).await["status"] == "done" }).await);
    assert_eq!(
        env.fakes
            .inventory
            .log
            .count(&id, "release:customer_cancelled"),
        1
    );
    assert_eq!(
        env.fakes
            .payment
            .log
            .count(&id, "refund:customer_cancelled"),
        1
    );
    assert_eq!(
        env.fakes.payment.log.count(&id, "charge"),
        0,
        "never charged"
    );
    assert!(!env.fakes.inventory.holds(&id));
});

both!(
    cancelling_a_confirmed_order_releases_and_refunds_once,
    |env| {
        let app = env.start("a").await;
        let user = app.customer();
        let order = app
            .place_with(
                &user,
                Some("k"),
                &body(&[(P1.0, 2)], "tok_visa"),
                &[("Prefer", "wait=20")],
            )
            .await
            .json::<Value>()
            .await
            .unwrap();
        let id = order["id"].as_str().unwrap().to_owned();
        assert_eq!(order["status"], "confirmed");
        let res = app
            .post(&user, &format!("/api/v1/orders/{id}/cancel"))
            .await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        // Repeating the cancel is the same answer.
        let res = app
            .post(&user, &format!("/api/v1/orders/{id}/cancel"))
            .await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        let order = app.wait_status(&user, &id, "cancelled").await;
        assert_eq!(order["status_reason"], "customer_cancelled");
        assert_eq!(history(&order), ["pending", "confirmed", "cancelled"]);
        assert_eq!(order["payment"]["status"], "refunded");
        assert_eq!(
            env.fakes.inventory.log.of(&id),
            ["reserve", "release:customer_cancelled"]
        );
        assert_eq!(
            env.fakes.payment.log.of(&id),
            ["charge", "refund:customer_cancelled"]
        );
        // Shipping can no longer claim it.
        assert_eq!(
            app.claim(&id).await.unwrap(),
            (false, "cancelled".to_owned())
        );
    }
);

both!(a_claimed_order_cannot_be_cancelled, |env| {
    let app = env.start("a").await;
    let user = app.customer();
    let order = app
        .place_with(
            &user,
            Some("k"),
            &body(&[(P1.0, 1)], "tok_visa"),
            &[("Prefer", "wait=20")],
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    let id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(order["status"], "confirmed");
    assert_eq!(
        app.claim(&id).await.unwrap(),
        (true, "confirmed".to_owned())
    );
    let p = problem(
        app.post(&user, &format!("/api/v1/orders/{id}/cancel"))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(p["type"], "urn:bazaar:problem:conflict");
    // A repeated claim is granted again; the order is untouched.
    assert_eq!(
        app.claim(&id).await.unwrap(),
        (true, "confirmed".to_owned())
    );
    assert_eq!(app.order(&user, &id).await["status"], "confirmed");
    assert_eq!(env.fakes.payment.log.count(&id, "refund"), 0);
});

both!(a_cancel_beats_a_later_claim, |env| {
    let app = env.start("a").await;
    let user = app.customer();
    env.fakes.inventory.reserve_gate.close();
    let order = app.place_ok(&user, &body(&[(P1.0, 1)], "tok_visa")).await;
    let id = order["id"].as_str().unwrap().to_owned();
    // Not confirmed yet: no claim.
    assert_eq!(app.claim(&id).await.unwrap(), (false, "pending".to_owned()));
    let res = app
        .post(&user, &format!("/api/v1/orders/{id}/cancel"))
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    env.fakes.inventory.reserve_gate.open();
    let (claimed, _) = app.claim(&id).await.unwrap();
    assert!(!claimed, "a cancelling order is never claimed");
    app.wait_status(&user, &id, "cancelled").await;
    assert_eq!(
        app.claim(&id).await.unwrap(),
        (false, "cancelled".to_owned())
    );
});

both!(only_the_owner_can_cancel, |env| {
    let app = env.start("a").await;
    let (owner, other) = (app.customer(), app.customer());
    let order = app.place_ok(&owner, &body(&[(P1.0, 1)], "tok_visa")).await;
    let id = order["id"].as_str().unwrap().to_owned();
    problem(
        app.post(&other, &format!("/api/v1/orders/{id}/cancel"))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.post(
            &owner,
            "/api/v1/orders/01900000-0000-7000-8000-00000000dead/cancel",
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.post(&owner, "/api/v1/orders/nope/cancel").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let missing = app
        .claim("01900000-0000-7000-8000-00000000dead")
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    app.wait_status(&owner, &id, "confirmed").await;
});
