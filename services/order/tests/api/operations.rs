//! What operators and crashes do to sagas: stuck, retry, abort, two instances, restarts.

use std::{sync::atomic::Ordering, time::Duration};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{body, both, eventually, problem, P1, P2};

both!(
    a_saga_that_keeps_failing_is_stuck_until_an_operator_retries,
    |env| {
        let mut env = env;
        env.saga.max_attempts_per_step = 3;
        let app = env.start("a").await;
        let user = app.customer();
        env.fakes
            .inventory
            .fail_reserve
            .store(true, Ordering::SeqCst);
        let order = app.place_ok(&user, &body(&[(P1.0, 1)], "tok_visa")).await;
        let id = order["id"].as_str().unwrap().to_owned();
        assert!(eventually(|| async { app.saga(&id).await["status"] == "stuck" }).await);
        let admin = app.admin();
        let page: Value = app
            .get(&admin, "/api/v1/admin/sagas?status=stuck")
            .await
            .json()
            .await
            .unwrap();
        let saga = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["order_id"] == id.as_str())
            .unwrap()
            .clone();
        assert_eq!(saga["step"], "reserve");
        assert_eq!(saga["attempts"], 3);
        // A parked saga runs nowhere.
        assert_eq!(saga["held_by"], Value::Null, "{saga}");
        assert!(
            saga["last_error"]
                .as_str()
                .unwrap()
                .contains("inventory database is down"),
            "{saga}"
        );
        let outcomes: Vec<&str> = saga["log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(outcomes, ["started", "failed", "failed", "stuck"]);
        assert_eq!(env.fakes.inventory.log.count(&id, "reserve"), 3);
        assert_eq!(app.order(&user, &id).await["status"], "pending");

        // Only admins.
        problem(
            app.post(&user, &format!("/api/v1/admin/sagas/{id}/retry"))
                .await,
            StatusCode::FORBIDDEN,
        )
        .await;
        problem(
            app.get(&admin, "/api/v1/admin/sagas?status=nope").await,
            StatusCode::BAD_REQUEST,
        )
        .await;

        env.fakes
            .inventory
            .fail_reserve
            .store(false, Ordering::SeqCst);
        let res = app
            .post(&admin, &format!("/api/v1/admin/sagas/{id}/retry"))
            .await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        let retried: Value = res.json().await.unwrap();
        assert_eq!(retried["attempts"], 0);
        app.wait_status(&user, &id, "confirmed").await;
        // Retrying a saga that is not stuck is a conflict; an unknown one is not found.
        problem(
            app.post(&admin, &format!("/api/v1/admin/sagas/{id}/retry"))
                .await,
            StatusCode::CONFLICT,
        )
        .await;
        problem(
            app.post(
                &admin,
                "/admin/sagas/01900000-0000-7000-8000-00000000dead/retry",
            )
            .await,
            StatusCode::NOT_FOUND,
        )
        .await;
        // The same routes answer without the /api/v1 prefix on the service's own port.
        let res = app.get(&admin, "/admin/sagas?status=done").await;
        assert_eq!(res.status(), StatusCode::OK);
    }
);

both!(an_operator_abort_compensates_and_rejects_the_order, |env| {
    let mut env = env;
    env.saga.max_attempts_per_step = 2;
    let app = env.start("a").await;
    let user = app.customer();
    let admin = app.admin();
    // Reserved, then payment is unreachable from the order service's side (a transient
    // failure, not the provider's breaker) until the saga is stuck at the charge.
    env.resolver.remove("payment", env.fakes.addr);
    let order = app.place_ok(&user, &body(&[(P2.0, 2)], "tok_visa")).await;
    let id = order["id"].as_str().unwrap().to_owned();
    assert!(eventually(|| async { app.saga(&id).await["status"] == "stuck" }).await);
    assert!(env.fakes.inventory.holds(&id));
    env.resolver
        .add("payment", env.fakes.addr, Some(env.fakes.addr));

    let res = app
        .post(&admin, &format!("/api/v1/admin/sagas/{id}/abort"))
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let order = app.wait_status(&user, &id, "rejected").await;
    assert_eq!(order["status_reason"], "operator_aborted");
    assert!(eventually(|| async { app.saga(&id).await["status"] == "aborted" }).await);
    assert_eq!(
        env.fakes
            .inventory
            .log
            .count(&id, "release:operator_aborted"),
        1
    );
    assert!(!env.fakes.inventory.holds(&id));
    assert_eq!(env.fakes.payment.log.count(&id, "charge"), 0);
    // Over: no second abort, no cancel.
    problem(
        app.post(&admin, &format!("/api/v1/admin/sagas/{id}/abort"))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    problem(
        app.post(&user, &format!("/api/v1/orders/{id}/cancel"))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
});

both!(two_instances_never_run_one_saga_at_once, |env| {
    let a = env.start("a").await;
    let b = env.start("b").await;
    let user = a.customer();
    let mut ids = Vec::new();
    for i in 0..12 {
        let app = if i % 2 == 0 { &a } else { &b };
        let order = app
            .place_ok(&user, &body(&[(P1.0, 1), (P2.0, 1)], "tok_visa"))
            .await;
        ids.push(order["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        a.wait_status(&user, id, "confirmed").await;
    }
    for id in &ids {
        assert_eq!(env.fakes.inventory.log.of(id), ["reserve"], "{id}");
        assert_eq!(env.fakes.payment.log.of(id), ["charge"], "{id}");
    }
    assert_eq!(env.fakes.inventory.log.overlaps.load(Ordering::SeqCst), 0);
    assert_eq!(env.fakes.payment.log.overlaps.load(Ordering::SeqCst), 0);
});

both!(a_saga_resumes_after_its_instance_dies_mid_step, |env| {
    let mut env = env;
    env.saga.lease = Duration::from_secs(4);
    let app = env.start("a").await;
    let user = app.customer();
    env.fakes.inventory.reserve_gate.close();
    let order = app.place_ok(&user, &body(&[(P1.0, 3)], "tok_visa")).await;
    let id = order["id"].as_str().unwrap().to_owned();
    assert!(eventually(|| async { env.fakes.inventory.log.count(&id, "reserve") == 1 }).await);
    // The instance dies with the reservation in flight.
    drop(app);
    env.fakes.inventory.reserve_gate.open();
    let app = env.start("b").await;
    let user = app.same_user(&user);
    let order = app.wait_status(&user, &id, "confirmed").await;
    assert_eq!(order["history"].as_array().unwrap().len(), 2);
    assert_eq!(
        env.fakes.inventory.log.count(&id, "reserve"),
        2,
        "the step ran again"
    );
    assert_eq!(env.fakes.payment.log.of(&id), ["charge"]);
    let saga = app.saga(&id).await;
    assert_eq!(saga["status"], "done");
});
