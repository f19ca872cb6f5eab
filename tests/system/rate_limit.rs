//! Per-user and per-IP token buckets at the gateway.

use crate::support::{assert_problem, Options, Shop};

#[tokio::test]
async fn a_burst_past_the_limit_is_refused_and_other_users_are_unaffected() {
    let shop = Shop::start_with(Options {
        env: vec![
            ("BAZAAR_RATE_LIMIT_USER".into(), "2/s,burst=10".into()),
            ("BAZAAR_RATE_LIMIT_ANON".into(), "2/s,burst=20".into()),
        ],
        ..Options::default()
    })
    .await;
    let c = &shop.client;
    let (_, alice, _) = shop.customer().await;
    let (_, bob, _) = shop.customer().await;

    let mut limited = None;
    for _ in 0..30 {
        let res = c
            .get(shop.url("/api/v1/users/me"))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        for h in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
            assert!(res.headers().contains_key(h), "missing {h}");
        }
        if res.status() == 429 {
            limited = Some(res);
            break;
        }
        assert_eq!(res.status(), 200);
    }
    let res = limited.expect("a burst of 30 against burst=10 must be limited");
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert_eq!(res.headers()["ratelimit-remaining"], "0");
    assert_problem(res, 429, "rate-limited").await;

    // Bob has his own bucket.
    let res = c
        .get(shop.url("/api/v1/users/me"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Anonymous callers are limited per IP.
    let mut anon_limited = false;
    for _ in 0..60 {
        let res = c
            .get(shop.url(&format!(
                "/api/v1/products?q={}",
                uuid::Uuid::new_v4().simple()
            )))
            .send()
            .await
            .unwrap();
        if res.status() == 429 {
            anon_limited = true;
            break;
        }
    }
    assert!(
        anon_limited,
        "60 anonymous requests against burst=20 must be limited"
    );
}
