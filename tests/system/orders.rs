//! Orders end to end through the gateway: placement saga, payment, shipping, notification,
//! cancellation, compensation and the read model — on feeds + SQLite and on NATS + PostgreSQL.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{assert_problem, pointers, Options, Shop};

/// How long shipping waits before it claims a confirmed order, in these tests.
const HANDLING: &str = "1500ms";

pub fn shop_options(extra: &[(&str, &str)]) -> Options {
    let mut env: Vec<(String, String)> = vec![
        ("BAZAAR_HANDLING_TIME".into(), HANDLING.into()),
        ("BAZAAR_PAYMENT_TIMEOUT".into(), "1s".into()),
    ];
    env.extend(extra.iter().map(|(k, v)| ((*k).into(), (*v).into())));
    Options {
        env,
        ..Options::default()
    }
}

/// A shop on SQLite with the embedded feeds.
pub async fn feeds_shop(extra: &[(&str, &str)]) -> Shop {
    Shop::start_with(shop_options(extra)).await
}

/// A shop on PostgreSQL with NATS JetStream, or `None` (with a printed reason) when either
/// is not configured.
pub async fn nats_shop(extra: &[(&str, &str)]) -> Option<Shop> {
    let Some(nats) = std::env::var("BAZAAR_TEST_NATS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("skipped: BAZAAR_TEST_NATS_URL is not set");
        return None;
    };
    let template = bazaar_store::testing::postgres_template("bazaar_ord")?;
    let mut opts = shop_options(extra);
    opts.postgres_template = Some(template);
    opts.env.push(("BAZAAR_BUS".into(), nats));
    // A consumer that dies mid-handling gets its event again after this (default 30 s).
    opts.env.push(("BAZAAR_BUS_ACK_WAIT".into(), "3s".into()));
    // Streams and consumers of this shop only: tests run side by side on one NATS server.
    opts.env.push((
        "BAZAAR_BUS_NAMESPACE".into(),
        format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10]),
    ));
    Some(Shop::start_with(opts).await)
}

/// Polls `f` until it returns `Some`, or panics after `secs` seconds with `what`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub struct Customer {
    pub token: String,
    pub id: String,
}

pub async fn customer(shop: &Shop) -> Customer {
    let (_, token, id) = shop.customer().await;
    Customer { token, id }
}

/// The first `n` products of the demo catalog. The catalog may be restarting (some tests
/// crash every service on purpose), so a 5xx is retried for a while.
pub async fn products(shop: &Shop, n: usize) -> Vec<Value> {
    let url = shop.url(&format!("/api/v1/products?limit={n}"));
    let page = eventually(30, "the catalog to list products", || async {
        let res = shop.client.get(&url).send().await.ok()?;
        assert!(
            res.status() == 200 || res.status().is_server_error(),
            "GET {url}: {}",
            res.status()
        );
        (res.status() == 200).then_some(())?;
        res.json::<Value>().await.ok()
    })
    .await;
    page["items"].as_array().unwrap().clone()
}

pub fn order_body(product_id: &str, quantity: i64, card: &str, postal: &str) -> Value {
    json!({
        "items": [{"product_id": product_id, "quantity": quantity}],
        "shipping_address": {"name": "Ada Lovelace", "line1": "1 Analytical Way", "line2": null,
                             "city": "London", "postal_code": postal, "country": "GB"},
        "payment": {"card_token": card}
    })
}

/// POSTs an order; returns the response.
pub async fn place(
    shop: &Shop,
    who: &Customer,
    key: &str,
    body: &Value,
    wait: Option<u32>,
) -> reqwest::Response {
    let mut req = shop
        .client
        .post(shop.url("/api/v1/orders"))
        .bearer_auth(&who.token)
        .header("Idempotency-Key", key)
        .json(body);
    if let Some(w) = wait {
        req = req.header("Prefer", format!("wait={w}"));
    }
    req.send().await.unwrap()
}

/// POSTs an order that must be accepted (201); returns the order.
pub async fn place_json(
    shop: &Shop,
    who: &Customer,
    key: &str,
    body: &Value,
    wait: Option<u32>,
) -> Value {
    let res = place(shop, who, key, body, wait).await;
    assert_eq!(res.status(), 201, "placing {key}");
    res.json().await.unwrap()
}

pub async fn get_order(shop: &Shop, token: &str, id: &str) -> reqwest::Response {
    shop.client
        .get(shop.url(&format!("/api/v1/orders/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Waits until the order's status is one of `statuses`; returns the order.
pub async fn wait_status(shop: &Shop, who: &Customer, id: &str, statuses: &[&str]) -> Value {
    eventually(30, &format!("order {id} to reach {statuses:?}"), || async {
        let o: Value = get_order(shop, &who.token, id).await.json().await.ok()?;
        statuses
            .contains(&o["status"].as_str().unwrap_or(""))
            .then_some(o)
    })
    .await
}

pub async fn stock(shop: &Shop, admin: &str, sku: &str) -> Value {
    let res = shop
        .client
        .get(shop.url(&format!("/api/v1/inventory/{sku}")))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

pub async fn set_stock(shop: &Shop, admin: &str, sku: &str, on_hand: i64) {
    let res = shop
        .client
        .put(shop.url(&format!("/api/v1/inventory/{sku}")))
        .bearer_auth(admin)
        .json(&json!({"on_hand": on_hand}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
}

pub async fn payment(shop: &Shop, admin: &str, order_id: &str) -> Value {
    let res = shop
        .client
        .get(shop.url(&format!("/api/v1/admin/payments?order_id={order_id}")))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    res.json().await.unwrap()
}

pub async fn notifications(shop: &Shop, who: &Customer) -> Vec<Value> {
    let res = shop
        .client
        .get(shop.url("/api/v1/me/notifications?limit=100"))
        .bearer_auth(&who.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// The psp stand-in's own address (it is not behind the gateway).
pub fn psp(shop: &Shop) -> String {
    format!("http://{}", shop.process("psp")["addr"].as_str().unwrap())
}

pub async fn psp_behaviour(shop: &Shop, admin: &str, behaviour: Value) {
    let res = shop
        .client
        .put(format!("{}/admin/behaviour", psp(shop)))
        .bearer_auth(admin)
        .json(&behaviour)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
}

/// Runs a test on feeds + SQLite and on NATS JetStream + PostgreSQL (the latter skipped with
/// a printed reason when `BAZAAR_TEST_POSTGRES_URL` or `BAZAAR_TEST_NATS_URL` is unset).
macro_rules! both_backends {
    ($name:ident, $extra:expr) => {
        mod $name {
            #[tokio::test]
            async fn on_feeds_and_sqlite() {
                super::$name(super::feeds_shop($extra).await).await;
            }

            #[tokio::test]
            async fn on_nats_and_postgres() {
                let Some(shop) = super::nats_shop($extra).await else {
                    return;
                };
                super::$name(shop).await;
            }
        }
    };
}

both_backends!(an_order_confirms_ships_and_notifies, &[]);
both_backends!(
    two_hundred_concurrent_orders_never_oversell_fifty_units,
    &[]
);
both_backends!(orders_validate_and_replay_by_idempotency_key, &[]);
both_backends!(
    declined_payments_release_stock_and_failed_shipments_refund,
    &[]
);
both_backends!(
    cancelling_compensates_and_a_shipped_order_cannot_be_cancelled,
    &[("BAZAAR_HANDLING_TIME", "3s")]
);
both_backends!(
    an_unavailable_provider_opens_the_breaker_and_pending_orders_confirm_later,
    &[]
);
both_backends!(a_timed_out_charge_is_queried_before_it_is_retried, &[]);
both_backends!(
    killing_the_order_service_mid_saga_still_finishes_every_saga,
    &[("BAZAAR_FAILPOINTS", "order.saga.after_reserve=abort")]
);
both_backends!(
    an_event_committed_before_a_crash_is_delivered_once,
    &[("BAZAAR_FAILPOINTS", "order.place.after_commit=abort")]
);
both_backends!(
    a_poison_event_is_dead_lettered_and_redriven_once,
    &[
        ("BAZAAR_FAILPOINTS", "notification.handle=error"),
        ("BAZAAR_BUS_RETRY_BASE", "10ms"),
    ]
);
both_backends!(
    a_slow_provider_opens_the_breaker_and_orders_fail_fast_to_payment_pending,
    &[]
);
both_backends!(
    a_cancel_racing_dispatch_ends_cancelled_or_shipped_never_both,
    &[("BAZAAR_HANDLING_TIME", "1s")]
);

async fn an_order_confirms_ships_and_notifies(shop: Shop) {
    let shop = &shop;
    let who = customer(shop).await;
    let admin = shop.admin_token().await;
    let product = products(shop, 1).await.remove(0);
    let pid = product["id"].as_str().unwrap();
    let sku = product["sku"].as_str().unwrap();
    assert_eq!(product["in_stock"], true, "{product}");
    let before = stock(shop, &admin, sku).await;

    let res = place(
        shop,
        &who,
        "happy-1",
        &order_body(pid, 2, "tok_visa", "10115"),
        Some(10),
    )
    .await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["preference-applied"], "wait=10");
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let order: Value = res.json().await.unwrap();
    let id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/orders/{id}"));
    assert_eq!(order["status"], "confirmed", "{order}");
    let price = product["price"]["amount_minor"].as_i64().unwrap();
    assert_eq!(order["total"]["amount_minor"], price * 2);
    assert_eq!(order["items"][0]["sku"], sku);
    assert_eq!(order["items"][0]["line_total"]["amount_minor"], price * 2);
    assert_eq!(order["payment"]["status"], "captured");

    // Shipped after the handling time; stock committed.
    let shipped = wait_status(shop, &who, &id, &["shipped"]).await;
    assert_eq!(shipped["shipment"]["status"], "dispatched");
    assert!(shipped["shipment"]["tracking_number"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    let history: Vec<&str> = shipped["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["pending", "confirmed", "shipped"]);
    let after = eventually(10, "stock to be committed", || async {
        let s = stock(shop, &admin, sku).await;
        (s["on_hand"].as_i64() == Some(before["on_hand"].as_i64().unwrap() - 2)).then_some(s)
    })
    .await;
    assert_eq!(after["reserved"], before["reserved"]);

    // The read model, the notifications and the composition.
    eventually(10, "the order in the history read model", || async {
        let res = shop
            .client
            .get(shop.url("/api/v1/orders"))
            .bearer_auth(&who.token)
            .send()
            .await
            .ok()?;
        let list: Value = res.json().await.ok()?;
        let items = list["items"].as_array()?;
        (items.len() == 1 && items[0]["id"] == id.as_str() && items[0]["status"] == "shipped")
            .then_some(())
    })
    .await;
    let kinds = eventually(10, "confirmed and shipped notifications", || async {
        let kinds: Vec<String> = notifications(shop, &who)
            .await
            .iter()
            .filter(|n| n["order_id"] == id.as_str())
            .map(|n| n["kind"].as_str().unwrap().to_owned())
            .collect();
        (kinds.len() >= 2).then_some(kinds)
    })
    .await;
    assert!(kinds.contains(&"order_confirmed".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"order_shipped".to_owned()), "{kinds:?}");
    let overview: Value = shop
        .client
        .get(shop.url("/api/v1/me/overview"))
        .bearer_auth(&who.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(overview["user"]["id"], who.id.as_str(), "{overview}");
    assert_eq!(
        overview["recent_orders"][0]["id"],
        id.as_str(),
        "{overview}"
    );
    assert!(
        overview["unread_notifications"].as_i64().unwrap() >= 3,
        "{overview}"
    );
    assert_eq!(overview["warnings"], json!([]));

    // Payment captured exactly once.
    let pay = payment(shop, &admin, &id).await;
    assert_eq!(pay["captured_minor"], price * 2);
    assert_eq!(pay["refunded_minor"], 0);
    assert_eq!(pay["attempts"], 1);

    // Another customer cannot see it.
    let other = customer(shop).await;
    assert_problem(get_order(shop, &other.token, &id).await, 404, "not-found").await;
}

async fn orders_validate_and_replay_by_idempotency_key(shop: Shop) {
    let who = customer(&shop).await;
    let product = products(&shop, 1).await.remove(0);
    let pid = product["id"].as_str().unwrap();
    let body = order_body(pid, 1, "tok_visa", "10115");

    // No key, a key too long, an invisible character.
    let res = shop
        .client
        .post(shop.url("/api/v1/orders"))
        .bearer_auth(&who.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, "malformed-request").await;
    let long = "k".repeat(256);
    assert_problem(
        place(&shop, &who, &long, &body, None).await,
        400,
        "malformed-request",
    )
    .await;
    // No token.
    let res = shop
        .client
        .post(shop.url("/api/v1/orders"))
        .header("Idempotency-Key", "anon")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;

    // Field rules, each with its pointer.
    let bad = json!({
        "items": [{"product_id": pid, "quantity": 0}, {"product_id": pid, "quantity": 101}],
        "shipping_address": {"name": "", "line1": "x", "line2": null, "city": "y",
                             "postal_code": "1", "country": "XX"},
        "payment": {"card_token": "tok_visa"}
    });
    let problem = assert_problem(
        place(&shop, &who, "bad-1", &bad, None).await,
        422,
        "validation",
    )
    .await;
    let p = pointers(&problem);
    for want in [
        "/items/0/quantity",
        "/items/1/quantity",
        "/shipping_address/name",
        "/shipping_address/country",
    ] {
        assert!(p.contains(&want.to_owned()), "{want} missing from {p:?}");
    }
    let empty = json!({"items": [], "shipping_address": body["shipping_address"], "payment": body["payment"]});
    let problem = assert_problem(
        place(&shop, &who, "bad-2", &empty, None).await,
        422,
        "validation",
    )
    .await;
    assert_eq!(pointers(&problem), ["/items"]);
    let unknown = order_body(&uuid::Uuid::now_v7().to_string(), 1, "tok_visa", "10115");
    let problem = assert_problem(
        place(&shop, &who, "unknown-1", &unknown, None).await,
        422,
        "validation",
    )
    .await;
    assert_eq!(pointers(&problem), ["/items/0/product_id"]);
    // A rejected request does not use up its key.
    let res = place(&shop, &who, "unknown-1", &body, None).await;
    assert_eq!(res.status(), 201);

    // Replays.
    let first: Value = place_json(&shop, &who, "replay-1", &body, None).await;
    let res = place(&shop, &who, "replay-1", &body, None).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    let again: Value = res.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    let other_body = order_body(pid, 2, "tok_visa", "10115");
    assert_problem(
        place(&shop, &who, "replay-1", &other_body, None).await,
        422,
        "idempotency-key-reused",
    )
    .await;
    // Keys are per user.
    let someone = customer(&shop).await;
    let theirs: Value = place_json(&shop, &someone, "replay-1", &body, None).await;
    assert_ne!(theirs["id"], first["id"]);
    // Not a UUID → 404 like an unknown id.
    assert_problem(
        get_order(&shop, &who.token, "not-a-uuid").await,
        404,
        "not-found",
    )
    .await;
}

async fn declined_payments_release_stock_and_failed_shipments_refund(shop: Shop) {
    let who = customer(&shop).await;
    let admin = shop.admin_token().await;
    let product = products(&shop, 2).await.remove(1);
    let (pid, sku) = (
        product["id"].as_str().unwrap(),
        product["sku"].as_str().unwrap(),
    );
    let before = stock(&shop, &admin, sku).await;

    let declined: Value = place_json(
        &shop,
        &who,
        "d-1",
        &order_body(pid, 3, "tok_declined", "10115"),
        Some(10),
    )
    .await;
    assert_eq!(declined["status"], "rejected", "{declined}");
    assert_eq!(declined["status_reason"], "payment_declined");
    assert_eq!(declined["payment"]["status"], "declined");
    eventually(10, "the reservation to be released", || async {
        (stock(&shop, &admin, sku).await == before).then_some(())
    })
    .await;

    let failed: Value = place_json(
        &shop,
        &who,
        "f-1",
        &order_body(pid, 1, "tok_visa", "00000"),
        Some(10),
    )
    .await;
    assert_eq!(failed["status"], "confirmed", "{failed}");
    let id = failed["id"].as_str().unwrap();
    let cancelled = wait_status(&shop, &who, id, &["cancelled"]).await;
    assert_eq!(cancelled["status_reason"], "shipment_failed");
    assert_eq!(cancelled["shipment"]["status"], "failed");
    let pay = eventually(10, "the refund", || async {
        let p = payment(&shop, &admin, id).await;
        (p["refunded_minor"] == p["captured_minor"]).then_some(p)
    })
    .await;
    assert!(pay["captured_minor"].as_i64().unwrap() > 0);
    eventually(10, "the stock to be released", || async {
        (stock(&shop, &admin, sku).await == before).then_some(())
    })
    .await;
}

async fn cancelling_compensates_and_a_shipped_order_cannot_be_cancelled(shop: Shop) {
    let who = customer(&shop).await;
    let admin = shop.admin_token().await;
    let product = products(&shop, 3).await.remove(2);
    let (pid, sku) = (
        product["id"].as_str().unwrap(),
        product["sku"].as_str().unwrap(),
    );
    let before = stock(&shop, &admin, sku).await;

    let order: Value = place_json(
        &shop,
        &who,
        "c-1",
        &order_body(pid, 1, "tok_visa", "10115"),
        Some(10),
    )
    .await;
    assert_eq!(order["status"], "confirmed");
    let id = order["id"].as_str().unwrap();
    let cancel = |token: String| {
        let url = shop.url(&format!("/api/v1/orders/{id}/cancel"));
        let client = shop.client.clone();
        async move { client.post(url).bearer_auth(token).send().await.unwrap() }
    };
    // Someone else's cancel is a 404.
    let other = customer(&shop).await;
    assert_problem(cancel(other.token.clone()).await, 404, "not-found").await;
    assert_eq!(cancel(who.token.clone()).await.status(), 202);
    let done = wait_status(&shop, &who, id, &["cancelled", "shipped"]).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    assert_eq!(done["status_reason"], "customer_cancelled");
    let pay = eventually(10, "the refund", || async {
        let p = payment(&shop, &admin, id).await;
        (p["refunded_minor"] == p["captured_minor"]).then_some(p)
    })
    .await;
    assert!(pay["refunded_minor"].as_i64().unwrap() > 0);
    eventually(10, "the stock to be released", || async {
        (stock(&shop, &admin, sku).await == before).then_some(())
    })
    .await;
    // Cancelling again is still fine; cancelling a shipped order is a conflict.
    assert_eq!(cancel(who.token.clone()).await.status(), 202);
    let order: Value = place_json(
        &shop,
        &who,
        "c-2",
        &order_body(pid, 1, "tok_visa", "10115"),
        Some(10),
    )
    .await;
    let id2 = order["id"].as_str().unwrap();
    wait_status(&shop, &who, id2, &["shipped"]).await;
    let res = shop
        .client
        .post(shop.url(&format!("/api/v1/orders/{id2}/cancel")))
        .bearer_auth(&who.token)
        .send()
        .await
        .unwrap();
    assert_problem(res, 409, "conflict").await;
}

async fn two_hundred_concurrent_orders_never_oversell_fifty_units(shop: Shop) {
    let shop = &shop;
    let admin = shop.admin_token().await;
    let product = products(shop, 4).await.remove(3);
    let (pid, sku) = (
        product["id"].as_str().unwrap().to_owned(),
        product["sku"].as_str().unwrap().to_owned(),
    );
    set_stock(shop, &admin, &sku, 50).await;
    let buyers: Vec<Customer> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(customer(shop).await);
        }
        v
    };
    // Placements wait for their outcome (up to 30 s); under 200 at once on a small machine
    // that can take a while, so this client waits longer than the shop's default one.
    let patient = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let who = Customer {
            token: buyers[i % buyers.len()].token.clone(),
            id: String::new(),
        };
        let client = patient.clone();
        let url = shop.url("/api/v1/orders");
        let body = order_body(&pid, 1, "tok_visa", "10115");
        tasks.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(&who.token)
                .header("Idempotency-Key", format!("race-{i}"))
                .header("Prefer", "wait=30")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
            res.json::<Value>().await.unwrap()
        }));
    }
    let mut confirmed = 0;
    let mut out_of_stock = 0;
    for t in tasks {
        let mut o = t.await.unwrap();
        // On a busy machine a placement can outlast its `Prefer: wait`: wait for its outcome.
        if matches!(o["status"].as_str(), Some("pending" | "payment_pending")) {
            let id = o["id"].as_str().unwrap().to_owned();
            o = eventually(60, &format!("order {id} to finish placement"), || async {
                let o: Value = shop
                    .client
                    .get(shop.url(&format!("/api/v1/orders/{id}")))
                    .bearer_auth(&admin)
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                (!matches!(o["status"].as_str(), Some("pending" | "payment_pending"))).then_some(o)
            })
            .await;
        }
        match (o["status"].as_str().unwrap(), o["status_reason"].as_str()) {
            ("confirmed" | "shipped", _) => confirmed += 1,
            ("rejected", Some("out_of_stock")) => out_of_stock += 1,
            other => panic!("unexpected outcome {other:?}: {o}"),
        }
    }
    assert_eq!(confirmed, 50);
    assert_eq!(out_of_stock, 150);
    let s = stock(shop, &admin, &sku).await;
    let (on_hand, reserved, available) = (
        s["on_hand"].as_i64().unwrap(),
        s["reserved"].as_i64().unwrap(),
        s["available"].as_i64().unwrap(),
    );
    assert!(
        reserved >= 0 && reserved <= on_hand && available == on_hand - reserved,
        "{s}"
    );
    // Every confirmed unit is either still reserved or already shipped (committed).
    assert_eq!(reserved + (50 - on_hand), 50, "{s}");
}

async fn an_unavailable_provider_opens_the_breaker_and_pending_orders_confirm_later(shop: Shop) {
    let who = customer(&shop).await;
    let admin = shop.admin_token().await;
    let pid = products(&shop, 5).await[4]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    psp_behaviour(
        &shop,
        &admin,
        json!({"latency_ms": 0, "error_rate": 0.0, "down": true}),
    )
    .await;

    let mut pending = Vec::new();
    for i in 0..12 {
        let o: Value = place_json(
            &shop,
            &who,
            &format!("p-{i}"),
            &order_body(&pid, 1, "tok_visa", "10115"),
            Some(15),
        )
        .await;
        assert_eq!(o["status"], "payment_pending", "{o}");
        assert_eq!(o["payment"]["status"], "pending", "{o}");
        pending.push(o["id"].as_str().unwrap().to_owned());
    }
    // The breaker is open: the payment service fails fast instead of calling the provider.
    let breakers: Value = shop
        .client
        .get(shop.url("/api/v1/admin/breakers?service=payment"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        breakers["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["state"] == "open"),
        "{breakers}"
    );

    psp_behaviour(
        &shop,
        &admin,
        json!({"latency_ms": 0, "error_rate": 0.0, "down": false}),
    )
    .await;
    for id in &pending {
        let o = wait_status(&shop, &who, id, &["confirmed", "shipped"]).await;
        assert_eq!(o["payment"]["status"], "captured", "{o}");
        let pay = payment(&shop, &admin, id).await;
        assert_eq!(pay["refunded_minor"], 0);
    }
    // Exactly one capture per order at the provider.
    let stats: Value = shop
        .client
        .get(format!("{}/admin/stats", psp(&shop)))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats["charges"].as_i64(),
        Some(pending.len() as i64),
        "{stats}"
    );
}

async fn a_timed_out_charge_is_queried_before_it_is_retried(shop: Shop) {
    let who = customer(&shop).await;
    let admin = shop.admin_token().await;
    let pid = products(&shop, 6).await[5]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let o: Value = place_json(
        &shop,
        &who,
        "t-1",
        &order_body(&pid, 1, "tok_timeout", "10115"),
        Some(1),
    )
    .await;
    let id = o["id"].as_str().unwrap();
    let o = wait_status(&shop, &who, id, &["confirmed", "shipped"]).await;
    assert_eq!(o["payment"]["status"], "captured");
    let pay = payment(&shop, &admin, id).await;
    assert_eq!(pay["captured_minor"], o["total"]["amount_minor"]);
}

async fn killing_the_order_service_mid_saga_still_finishes_every_saga(shop: Shop) {
    let who = customer(&shop).await;
    let pid = products(&shop, 7).await[6]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pid_before = shop.process("order")["pid"].as_u64().unwrap();
    let res = place(
        &shop,
        &who,
        "k-1",
        &order_body(&pid, 1, "tok_visa", "10115"),
        None,
    )
    .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually(30, "the order service to be restarted", || async {
        let p = shop.process("order");
        (p["pid"].as_u64() != Some(pid_before) && p["restarts"].as_u64() >= Some(1)).then_some(())
    })
    .await;
    let o = wait_status(&shop, &who, &id, &["confirmed", "shipped"]).await;
    assert_eq!(o["payment"]["status"], "captured");
    // The replay after the restart returns the same order.
    let res = place(
        &shop,
        &who,
        "k-1",
        &order_body(&pid, 1, "tok_visa", "10115"),
        None,
    )
    .await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.json::<Value>().await.unwrap()["id"], id.as_str());
}

async fn an_event_committed_before_a_crash_is_delivered_once(shop: Shop) {
    // The order service dies right after the placement transaction commits, before it
    // answers or wakes its relay: the order and its `placed` event are in the database only.
    let who = customer(&shop).await;
    let pid = products(&shop, 8).await[7]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = order_body(&pid, 1, "tok_visa", "10115");
    let res = shop
        .client
        .post(shop.url("/api/v1/orders"))
        .bearer_auth(&who.token)
        .header("Idempotency-Key", "crash-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_server_error(), "{}", res.status());
    // After the restart the same key returns the committed order, which confirms and ships,
    // and each of its events took effect once (one notification per kind).
    let id = eventually(30, "the replay to find the order", || async {
        let res = place(&shop, &who, "crash-1", &body, None).await;
        (res.status() == 201).then_some(())?;
        Some(res.json::<Value>().await.ok()?["id"].as_str()?.to_owned())
    })
    .await;
    wait_status(&shop, &who, &id, &["shipped"]).await;
    let kinds = eventually(10, "notifications", || async {
        let kinds: Vec<String> = notifications(&shop, &who)
            .await
            .iter()
            .filter(|n| n["order_id"] == id.as_str())
            .map(|n| n["kind"].as_str().unwrap().to_owned())
            .collect();
        (kinds.len() >= 2).then_some(kinds)
    })
    .await;
    let mut sorted = kinds.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        kinds.len(),
        "a notification was duplicated: {kinds:?}"
    );
}

async fn a_poison_event_is_dead_lettered_and_redriven_once(shop: Shop) {
    // Notification's handler fails every event on its first run (a failpoint): the events
    // end in its dead-letter table; once the service runs without the fault, an operator
    // redrives them through the gateway and each takes effect once.
    let admin = shop.admin_token().await;
    let who = customer(&shop).await;
    let letters = eventually(30, "both welcome events to be dead-lettered", || async {
        let res = shop
            .client
            .get(shop.url("/api/v1/admin/dead-letters?service=notification"))
            .bearer_auth(&admin)
            .send()
            .await
            .ok()?;
        let body: Value = res.json().await.ok()?;
        let items = body["items"].as_array()?.clone();
        // The admin's welcome (bootstrap) and the customer's.
        (items.len() >= 2).then_some(items)
    })
    .await;
    for letter in &letters {
        assert_eq!(letter["attempts"], 8, "{letter}");
        assert_eq!(letter["status"], "dead", "{letter}");
        assert!(
            letter["error"].as_str().unwrap().contains("failpoint"),
            "{letter}"
        );
    }
    assert!(notifications(&shop, &who).await.is_empty());

    // Restart notification without the failpoint (the supervisor drops it on restarts).
    let pid = shop.process("notification")["pid"].as_u64().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually(30, "notification to be back", || async {
        let p = shop.process("notification");
        (p["pid"].as_u64() != Some(pid)).then_some(())
    })
    .await;
    // Every dead letter redriven twice: the second time changes nothing.
    for _ in 0..2 {
        for letter in &letters {
            let url = shop.url(&format!(
                "/api/v1/admin/dead-letters/notification/{}/redrive",
                letter["id"].as_str().unwrap()
            ));
            eventually(30, "the redrive to be accepted", || async {
                let res = shop
                    .client
                    .post(&url)
                    .bearer_auth(&admin)
                    .send()
                    .await
                    .ok()?;
                (res.status() == 200).then_some(())
            })
            .await;
        }
    }
    let mine = notifications(&shop, &who).await;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["kind"], "welcome");
}

async fn a_slow_provider_opens_the_breaker_and_orders_fail_fast_to_payment_pending(shop: Shop) {
    // The provider answers after the payment timeout (1 s here): calls time out, the breaker
    // opens on the slow/failed calls, and later orders go `payment_pending` without waiting
    // for the provider. Once it is fast again, every pending order is captured exactly once.
    let who = customer(&shop).await;
    let admin = shop.admin_token().await;
    let pid = products(&shop, 9).await[8]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    psp_behaviour(
        &shop,
        &admin,
        json!({"latency_ms": 1500, "error_rate": 0.0, "down": false}),
    )
    .await;
    let mut ids = Vec::new();
    let mut opened = false;
    for i in 0..15 {
        let o: Value = place_json(
            &shop,
            &who,
            &format!("slow-{i}"),
            &order_body(&pid, 1, "tok_visa", "10115"),
            Some(5),
        )
        .await;
        let status = o["status"].as_str().unwrap().to_owned();
        assert!(
            ["pending", "payment_pending", "confirmed"].contains(&status.as_str()),
            "{o}"
        );
        ids.push(o["id"].as_str().unwrap().to_owned());
        let breakers: Value = shop
            .client
            .get(shop.url("/api/v1/admin/breakers?service=payment"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        opened |= breakers["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["state"] == "open");
    }
    assert!(opened, "the breaker never opened on the slow provider");
    psp_behaviour(
        &shop,
        &admin,
        json!({"latency_ms": 0, "error_rate": 0.0, "down": false}),
    )
    .await;
    for id in &ids {
        let o = wait_status(&shop, &who, id, &["confirmed", "shipped"]).await;
        assert_eq!(o["payment"]["status"], "captured", "{o}");
    }
    let stats: Value = shop
        .client
        .get(format!("{}/admin/stats", psp(&shop)))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats["charges"].as_i64(),
        Some(ids.len() as i64),
        "one capture per order: {stats}"
    );
}

async fn a_cancel_racing_dispatch_ends_cancelled_or_shipped_never_both(shop: Shop) {
    let who = customer(&shop).await;
    let admin = shop.admin_token().await;
    let products = products(&shop, 10).await;
    let mut tasks = Vec::new();
    for i in 0..24_u64 {
        let product = &products[(i % 10) as usize];
        let pid = product["id"].as_str().unwrap().to_owned();
        let body = order_body(&pid, 1, "tok_visa", "10115");
        let o: Value = place_json(&shop, &who, &format!("race-c-{i}"), &body, Some(10)).await;
        assert_eq!(o["status"], "confirmed", "{o}");
        let id = o["id"].as_str().unwrap().to_owned();
        let client = shop.client.clone();
        let url = shop.url(&format!("/api/v1/orders/{id}/cancel"));
        let token = who.token.clone();
        // Cancels spread from well before to well after the 1 s handling time.
        let delay = Duration::from_millis(600 + 40 * i);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let status = client
                .post(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status();
            (id, status.as_u16())
        }));
    }
    let (mut cancelled, mut shipped) = (0, 0);
    for t in tasks {
        let (id, status) = t.await.unwrap();
        let o = wait_status(&shop, &who, &id, &["cancelled", "shipped"]).await;
        let pay = eventually(10, "the payment to settle", || async {
            let p = payment(&shop, &admin, &id).await;
            let settled = match o["status"].as_str().unwrap() {
                "cancelled" => p["refunded_minor"] == p["captured_minor"],
                _ => true,
            };
            settled.then_some(p)
        })
        .await;
        match status {
            202 => {
                assert_eq!(o["status"], "cancelled", "a 202 must end cancelled: {o}");
                assert_eq!(o["status_reason"], "customer_cancelled");
                assert_ne!(o["shipment"]["status"], "dispatched", "{o}");
                assert_eq!(pay["refunded_minor"], pay["captured_minor"], "{pay}");
                cancelled += 1;
            }
            409 => {
                assert_eq!(o["status"], "shipped", "a 409 must end shipped: {o}");
                assert_eq!(
                    pay["refunded_minor"], 0,
                    "no refund without a cancel: {pay}"
                );
                shipped += 1;
            }
            other => panic!("unexpected cancel answer {other} for {o}"),
        }
    }
    eprintln!("cancel race: {cancelled} cancelled, {shipped} shipped");
    // The stock ledger holds for every SKU afterwards.
    for product in &products {
        let sku = product["sku"].as_str().unwrap();
        let ledger: Value = shop
            .client
            .get(format!(
                "http://{}/admin/ledger/{sku}",
                shop.process("inventory")["addr"].as_str().unwrap()
            ))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ledger["consistent"], true, "{ledger}");
        let (on_hand, reserved) = (
            ledger["on_hand"].as_i64().unwrap(),
            ledger["reserved"].as_i64().unwrap(),
        );
        assert!(0 <= reserved && reserved <= on_hand, "{ledger}");
    }
}

both_backends!(
    consumers_that_crash_mid_handling_redeliver_and_apply_once,
    &[(
        "BAZAAR_FAILPOINTS",
        "messaging.consumer.before_commit=abort"
    )]
);

/// Every consumer of every service dies (abort) on the first event it handles, after its
/// handler ran and before its transaction committed. Each service is restarted without the
/// fault, the event is delivered again, and each effect happens exactly once.
async fn consumers_that_crash_mid_handling_redeliver_and_apply_once(shop: Shop) {
    let who = customer(&shop).await;
    let admin = shop.admin_token().await;
    let product = products(&shop, 11).await.remove(10);
    let (pid, sku) = (
        product["id"].as_str().unwrap(),
        product["sku"].as_str().unwrap(),
    );
    let before = eventually(30, "inventory to answer", || async {
        let res = shop
            .client
            .get(shop.url(&format!("/api/v1/inventory/{sku}")))
            .bearer_auth(&admin)
            .send()
            .await
            .ok()?;
        (res.status() == 200).then_some(())?;
        res.json::<Value>().await.ok()
    })
    .await;
    let id = eventually(60, "an order to be accepted", || async {
        let res = place(
            &shop,
            &who,
            "crashy-1",
            &order_body(pid, 2, "tok_visa", "10115"),
            None,
        )
        .await;
        (res.status() == 201).then_some(())?;
        Some(res.json::<Value>().await.ok()?["id"].as_str()?.to_owned())
    })
    .await;
    let o = wait_status(&shop, &who, &id, &["shipped"]).await;
    assert_eq!(o["payment"]["status"], "captured");
    // Stock committed once.
    let after = eventually(20, "the stock to be committed", || async {
        let s = stock(&shop, &admin, sku).await;
        (s["on_hand"].as_i64() == Some(before["on_hand"].as_i64().unwrap() - 2)).then_some(s)
    })
    .await;
    assert_eq!(after["reserved"], before["reserved"], "{after}");
    // One notification per kind, after the notification consumer crashed once.
    let kinds = eventually(20, "the order's notifications", || async {
        let kinds: Vec<String> = notifications(&shop, &who)
            .await
            .iter()
            .filter(|n| n["order_id"] == id.as_str())
            .map(|n| n["kind"].as_str().unwrap().to_owned())
            .collect();
        (kinds.len() >= 2).then_some(kinds)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut again: Vec<String> = notifications(&shop, &who)
        .await
        .iter()
        .filter(|n| n["order_id"] == id.as_str())
        .map(|n| n["kind"].as_str().unwrap().to_owned())
        .collect();
    again.sort();
    assert_eq!(again, ["order_confirmed", "order_shipped"], "{kinds:?}");
    let pay = payment(&shop, &admin, &id).await;
    assert_eq!(pay["captured_minor"], o["total"]["amount_minor"], "{pay}");
    // Several services did crash and come back.
    let restarted = shop.run_file()["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["restarts"].as_u64() >= Some(1))
        .count();
    assert!(restarted >= 2, "{}", shop.run_file());
}

both_backends!(the_overview_answers_in_part_while_a_service_is_frozen, &[]);

/// The composition keeps answering when one of its services hangs: notification is frozen
/// (SIGSTOP), the overview still returns the user and the orders, with a warning for the
/// missing part. Operators see the order's finished saga through the gateway.
async fn the_overview_answers_in_part_while_a_service_is_frozen(shop: Shop) {
    let who = customer(&shop).await;
    let admin = shop.admin_token().await;
    let pid = products(&shop, 12).await[11]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let o: Value = place_json(
        &shop,
        &who,
        "ov-1",
        &order_body(&pid, 1, "tok_visa", "10115"),
        Some(10),
    )
    .await;
    assert_eq!(o["status"], "confirmed", "{o}");
    let id = o["id"].as_str().unwrap().to_owned();
    let sagas: Value = shop
        .client
        .get(shop.url("/api/v1/admin/sagas?status=done"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        sagas["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["order_id"] == id.as_str()),
        "{sagas}"
    );
    let customer_sagas = shop
        .client
        .get(shop.url("/api/v1/admin/sagas?status=done"))
        .bearer_auth(&who.token)
        .send()
        .await
        .unwrap();
    assert_problem(customer_sagas, 403, "forbidden").await;

    let notification =
        nix::unistd::Pid::from_raw(shop.process("notification")["pid"].as_u64().unwrap() as i32);
    nix::sys::signal::kill(notification, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let overview: Value = eventually(30, "an overview without notifications", || async {
        let res = shop
            .client
            .get(shop.url("/api/v1/me/overview"))
            .bearer_auth(&who.token)
            .send()
            .await
            .ok()?;
        let body: Value = res.json().await.ok()?;
        body["unread_notifications"].is_null().then_some(body)
    })
    .await;
    nix::sys::signal::kill(notification, nix::sys::signal::Signal::SIGCONT).unwrap();
    assert_eq!(overview["user"]["id"], who.id.as_str(), "{overview}");
    assert_eq!(
        overview["recent_orders"][0]["id"],
        id.as_str(),
        "{overview}"
    );
    let warnings = overview["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{overview}");
    assert_eq!(warnings[0]["part"], "unread_notifications", "{overview}");
    assert!(
        !warnings[0].to_string().contains("127.0.0.1"),
        "no internal address: {overview}"
    );
}
