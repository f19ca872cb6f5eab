//! Idempotent placement: replays, reused keys, keys in flight, restarts.

use std::sync::atomic::Ordering;

use reqwest::{header, StatusCode};
use serde_json::Value;

use crate::helpers::{body, both, eventually, problem, P1, P2};

both!(a_repeated_request_gets_the_same_order_back, |env| {
    let app = env.start("a").await;
    let user = app.customer();
    let b = body(&[(P1.0, 2), (P2.0, 1)], "tok_visa");
    let first = app.place_with(&user, Some("key-1"), &b, &[]).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let location = first.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let first: Value = first.json().await.unwrap();
    let id = first["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/orders/{id}"));

    // The same JSON after parsing: other key order and whitespace.
    let reordered = format!(
        "{{ \"payment\": {{\"card_token\": \"tok_visa\"}}, \"shipping_address\": {}, \"items\": [ {{\"quantity\": 2, \"product_id\": \"{}\"}}, {{\"quantity\": 1, \"product_id\": \"{}\"}} ] }}",
        b["shipping_address"], P1.0, P2.0
    );
    let again = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&user.token)
        .header("Idempotency-Key", "key-1")
        .header(header::CONTENT_TYPE, "application/json")
        .body(reordered)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()[header::LOCATION], location.as_str());
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], id.as_str());

    // Only one order was made.
    app.wait_status(&user, &id, "confirmed").await;
    assert_eq!(env.fakes.inventory.log.count(&id, "reserve"), 1);
    let replayed: Value = app
        .place_with(&user, Some("key-1"), &b, &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        replayed["status"], "confirmed",
        "a replay shows the current state"
    );
});

both!(the_same_key_with_another_body_is_422, |env| {
    let app = env.start("a").await;
    let user = app.customer();
    let res = app
        .place_with(&user, Some("key-2"), &body(&[(P1.0, 1)], "tok_visa"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .place_with(&user, Some("key-2"), &body(&[(P1.0, 2)], "tok_visa"), &[])
        .await;
    let p = problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(p["type"], "urn:bazaar:problem:idempotency-key-reused");
});

both!(keys_are_scoped_per_user, |env| {
    let app = env.start("a").await;
    let (ann, bob) = (app.customer(), app.customer());
    let b = body(&[(P1.0, 1)], "tok_visa");
    let a: Value = app
        .place_with(&ann, Some("shared"), &b, &[])
        .await
        .json()
        .await
        .unwrap();
    let res = app.place_with(&bob, Some("shared"), &b, &[]).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.headers().get("idempotent-replayed").is_none());
    let b: Value = res.json().await.unwrap();
    assert_ne!(a["id"], b["id"]);
});

both!(a_key_still_in_flight_is_409_then_replays, |env| {
    let mut env = env;
    // Room for the held catalog call (pricing uses the step timeout too).
    env.saga.step_timeout = std::time::Duration::from_secs(5);
    env.saga.lease = std::time::Duration::from_secs(15);
    let app = std::sync::Arc::new(env.start("a").await);
    let user = app.customer();
    let b = body(&[(P1.0, 1)], "tok_visa");
    // Pricing asks the catalog (the replica has not heard of the product); hold it there.
    env.fakes.catalog.gate.close();
    let first = {
        let (app, user, b) = (app.clone(), user.clone(), b.clone());
        tokio::spawn(async move { app.place_with(&user, Some("slow"), &b, &[]).await })
    };
    assert!(eventually(|| async { env.fakes.catalog.calls.load(Ordering::SeqCst) >= 1 }).await);
    let p = problem(
        app.place_with(&user, Some("slow"), &b, &[]).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(p["type"], "urn:bazaar:problem:idempotency-key-in-flight");
    env.fakes.catalog.gate.open();
    let first = first.await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = app.place_with(&user, Some("slow"), &b, &[]).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
});

both!(a_replay_after_a_restart_returns_the_same_order, |env| {
    let app = env.start("a").await;
    let user = app.customer();
    let b = body(&[(P2.0, 3)], "tok_visa");
    let first: Value = app
        .place_with(&user, Some("survives"), &b, &[])
        .await
        .json()
        .await
        .unwrap();
    drop(app);
    let app = env.start("b").await;
    let user = app.same_user(&user);
    let res = app.place_with(&user, Some("survives"), &b, &[]).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    let again: Value = res.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    app.wait_status(&user, first["id"].as_str().unwrap(), "confirmed")
        .await;
});

both!(
    the_key_of_a_request_that_crashed_is_taken_over_after_a_while,
    |env| {
        use bazaar_order::store::idempotency::{attach, begin, forget, Begin};
        let db = bazaar_store::Db::open_for_service(
            "order",
            env.dir.path(),
            env.url.as_deref(),
            &bazaar_order::store::all_migrations(),
        )
        .await
        .unwrap();
        let minute = 60_000_000;
        let t0 = bazaar_runtime::time::now_micros();
        let first = begin(&db, "u1", "k", "hash", t0, minute).await.unwrap();
        assert_eq!(first, Begin::Fresh { claim_us: t0 });
        // While the first request may still be running: 409, and another body is still 422.
        assert_eq!(
            begin(&db, "u1", "k", "hash", t0 + 1_000_000, minute)
                .await
                .unwrap(),
            Begin::InFlight
        );
        assert_eq!(
            begin(&db, "u1", "k", "other", t0 + 1_000_000, minute)
                .await
                .unwrap(),
            Begin::Reused
        );
        // Past the takeover age the first request is presumed dead.
        let t1 = t0 + minute + 1;
        assert_eq!(
            begin(&db, "u1", "k", "hash", t1, minute).await.unwrap(),
            Begin::Fresh { claim_us: t1 }
        );
        // The first request, were it alive after all, can neither attach its order nor free the key.
        let mut tx = db.begin().await.unwrap();
        assert!(!attach(
            &mut tx,
            "u1",
            "k",
            t0,
            "01900000-0000-7000-8000-000000000001"
        )
        .await
        .unwrap());
        tx.rollback().await.unwrap();
        forget(&db, "u1", "k", t0).await.unwrap();
        assert_eq!(
            begin(&db, "u1", "k", "hash", t1 + 1, minute).await.unwrap(),
            Begin::InFlight
        );
        // The one that took over can.
        let mut tx = db.begin().await.unwrap();
        assert!(attach(
            &mut tx,
            "u1",
            "k",
            t1,
            "01900000-0000-7000-8000-000000000002"
        )
        .await
        .unwrap());
        tx.commit().await.unwrap();
        assert_eq!(
            begin(&db, "u1", "k", "hash", t1 + 2, minute).await.unwrap(),
            Begin::Replay {
                order_id: "01900000-0000-7000-8000-000000000002".into()
            }
        );
        // Once it has an order, the key is never given back.
        forget(&db, "u1", "k", t1).await.unwrap();
        assert!(matches!(
            begin(&db, "u1", "k", "hash", t1 + 3, minute).await.unwrap(),
            Begin::Replay { .. }
        ));
    }
);
