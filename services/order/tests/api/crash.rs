//! Real crashes: the order service runs in a child process with a failpoint set to `abort`
//! (the process dies there, like `kill -9`), then starts again in this process on the same
//! database. Nothing may be lost, done twice, or left half-done.

use std::{process::Stdio, sync::Arc, time::Duration};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use bazaar_auth::{Claims, JwkSet, SigningKey, Verifier};
use bazaar_order::{build, Settings};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::helpers::{body, both, eventually, test_bus, test_saga, Env, TestResolver, P1};

/// Set (to a JSON [`Spec`]) only in the child process.
const CHILD: &str = "BAZAAR_ORDER_CRASH_CHILD";

/// What the child runs against and what it places.
#[derive(Serialize, Deserialize)]
struct Spec {
    dir: String,
    url: Option<String>,
    fakes: String,
    kid: String,
    key_der: String,
    user: String,
    idempotency_key: String,
    body: Value,
}

/// The child: starts the service, places one order, and waits to die at the failpoint. In a
/// normal test run (no spec) it does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let spec: Spec = serde_json::from_str(&spec).unwrap();
    let fakes = spec.fakes.parse().unwrap();
    let resolver = Arc::new(TestResolver::default());
    for service in ["catalog", "inventory", "payment"] {
        resolver.add(service, fakes, Some(fakes));
    }
    let key =
        SigningKey::from_pkcs8(spec.kid.clone(), &STANDARD.decode(&spec.key_der).unwrap()).unwrap();
    let app = build(Settings {
        addr: "127.0.0.1:0".parse().unwrap(),
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: spec.dir.clone().into(),
        database_url: spec.url.clone(),
        verifier: Arc::new(Verifier::with_keys(JwkSet {
            keys: vec![key.public_jwk()],
        })),
        resolver: resolver.clone(),
        bus: test_bus(),
        payment_pending_deadline: Duration::from_secs(60),
        saga: test_saga(),
        instance_id: "doomed".into(),
    })
    .await
    .unwrap();
    let base = format!("http://{}", app.local_addr());
    resolver.add("order", app.local_addr(), app.grpc_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let token = key
        .sign(&Claims::new_access(
            &spec.user,
            vec!["customer".into()],
            bazaar_auth::unix_now(),
        ))
        .unwrap();
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(token)
        .header("Idempotency-Key", &spec.idempotency_key)
        .json(&spec.body)
        .send()
        .await;
    if let Ok(res) = res {
        let order: Value = res.json().await.unwrap();
        println!("ORDER {}", order["id"].as_str().unwrap_or_default());
    }
    // The failpoint ends the process long before this.
    tokio::time::sleep(Duration::from_secs(30)).await;
    println!("SURVIVED");
}

/// Runs the child with `failpoint` set to abort; returns the order id it printed, if any.
async fn crash_at(
    env: &Env,
    failpoint: &str,
    user: &str,
    key: &str,
    body: &Value,
) -> Option<String> {
    let spec = Spec {
        dir: env.dir.path().to_string_lossy().into_owned(),
        url: env.url.clone(),
        fakes: env.fakes.addr.to_string(),
        kid: env.key.kid().to_owned(),
        key_der: STANDARD.encode(env.key.pkcs8_der()),
        user: user.to_owned(),
        idempotency_key: key.to_owned(),
        body: body.clone(),
    };
    let out = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "crash::crash_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, serde_json::to_string(&spec).unwrap())
        .env("BAZAAR_FAILPOINTS", format!("{failpoint}=abort"))
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the child did not crash:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("failpoint {failpoint} aborts the process")),
        "the child died elsewhere:\n{stdout}\n{stderr}"
    );
    assert!(!stdout.contains("SURVIVED"));
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("ORDER "))
        .map(str::to_owned)
}

both!(
    a_crash_between_the_placement_commit_and_the_answer_loses_nothing,
    |env| {
        let user = uuid::Uuid::now_v7().to_string();
        let b = body(&[(P1.0, 2)], "tok_visa");
        let printed = crash_at(&env, "order.place.after_commit", &user, "crash-1", &b).await;
        assert_eq!(printed, None, "the client never got an answer");
        let app = env.start("survivor").await;
        let user = app.user(&user);
        // The client retries with the same key: the order was committed, so it is replayed.
        let res = app.place_with(&user, Some("crash-1"), &b, &[]).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(res.headers()["idempotent-replayed"], "true");
        let order: Value = res.json().await.unwrap();
        let id = order["id"].as_str().unwrap().to_owned();
        app.wait_status(&user, &id, "confirmed").await;
        assert_eq!(env.fakes.payment.log.of(&id), ["charge"]);
        assert!(env.fakes.inventory.holds(&id));
    }
);

/// Crashes the child at a saga failpoint after placing an order, restarts, and checks the
/// order ends confirmed with stock held once and money taken once.
async fn saga_crash(env: Env, failpoint: &str) -> (Env, String) {
    let user = uuid::Uuid::now_v7().to_string();
    let b = body(&[(P1.0, 1)], "tok_visa");
    crash_at(&env, failpoint, &user, "k", &b).await;
    let app = env.start("survivor").await;
    let user = app.user(&user);
    // Whether or not the child answered before it died, the key leads to its order.
    let res = app.place_with(&user, Some("k"), &b, &[]).await;
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    let order: Value = res.json().await.unwrap();
    let id = order["id"].as_str().unwrap().to_owned();
    let order = app.wait_status(&user, &id, "confirmed").await;
    let statuses: Vec<&str> = order["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pending", "confirmed"]);
    assert!(env.fakes.inventory.holds(&id));
    assert_eq!(
        env.fakes.payment.status(&id),
        bazaar_proto::payment::PaymentStatus::Captured
    );
    assert!(eventually(|| async { app.saga(&id).await["status"] == "done" }).await);
    drop(app);
    (env, id)
}

both!(
    a_crash_after_the_reservation_reserves_again_idempotently,
    |env| {
        let (env, id) = saga_crash(env, "order.saga.after_reserve").await;
        assert_eq!(env.fakes.inventory.log.count(&id, "reserve"), 2);
        assert_eq!(env.fakes.payment.log.of(&id), ["charge"]);
    }
);

both!(a_crash_after_the_charge_never_charges_twice, |env| {
    let (env, id) = saga_crash(env, "order.saga.after_charge").await;
    assert_eq!(env.fakes.inventory.log.count(&id, "reserve"), 1);
    // The step ran again; payment answered the first outcome (it dedupes by order id).
    assert_eq!(env.fakes.payment.log.count(&id, "charge"), 2);
});

both!(a_crash_before_the_confirmation_confirms_once, |env| {
    let (env, id) = saga_crash(env, "order.saga.before_confirm").await;
    assert_eq!(env.fakes.inventory.log.count(&id, "reserve"), 1);
    assert_eq!(env.fakes.payment.log.of(&id), ["charge"]);
});
