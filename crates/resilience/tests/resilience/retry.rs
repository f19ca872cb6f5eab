use std::sync::{Arc, Mutex};
use std::time::Duration;

use bazaar_resilience::{
    Idempotency, Idempotent, ResilienceError, RetryBudget, RetryLayer, RetryPolicy,
};
use tokio::time::Instant;
use tower::{Layer, ServiceExt};

use crate::{scripted, Boom, Step};

fn policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base: Duration::from_millis(50),
        max: Duration::from_secs(1),
        budget: Arc::new(RetryBudget::new(Duration::from_secs(10), 100, 0.2)),
    }
}

#[tokio::test(start_paused = true)]
async fn retries_a_retryable_error_of_an_idempotent_request_until_it_succeeds() {
    let (inner, calls) = scripted(|n| {
        if n < 2 {
            Step::Fail { retryable: true }
        } else {
            Step::Ok
        }
    });
    let service = RetryLayer::new(policy(3)).layer(inner);
    assert_eq!(service.oneshot(Idempotency::safe(())).await.unwrap(), 2);
    assert_eq!(calls.get(), 3);
}

#[tokio::test(start_paused = true)]
async fn stops_at_max_attempts_and_returns_the_last_error() {
    let (inner, calls) = scripted(|_| Step::Fail { retryable: true });
    let service = RetryLayer::new(policy(4)).layer(inner);
    let err = service.oneshot(Idempotency::safe(())).await.unwrap_err();
    assert!(matches!(
        err,
        ResilienceError::Inner(Boom { retryable: true })
    ));
    assert_eq!(calls.get(), 4);
}

#[tokio::test(start_paused = true)]
async fn never_retries_a_request_that_is_not_idempotent() {
    let (inner, calls) = scripted(|_| Step::Fail { retryable: true });
    let service = RetryLayer::new(policy(5)).layer(inner);
    let result = service.oneshot(Idempotency::unsafe_to_repeat(())).await;
    assert!(result.is_err());
    assert_eq!(calls.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn never_retries_an_error_the_classifier_calls_permanent() {
    let (inner, calls) = scripted(|n| Step::Fail {
        retryable: n == 0, // retryable once, then permanent
    });
    let service = RetryLayer::new(policy(5))
        .retry_if(|e: &Boom| e.retryable)
        .layer(inner);
    let err = service.oneshot(Idempotency::safe(())).await.unwrap_err();
    assert!(matches!(
        err,
        ResilienceError::Inner(Boom { retryable: false })
    ));
    assert_eq!(
        calls.get(),
        2,
        "one retry for the retryable error, none after"
    );
}

#[test]
fn http_requests_are_idempotent_by_method_or_idempotency_key() {
    let get = http::Request::get("/x").body(()).unwrap();
    let put = http::Request::put("/x").body(()).unwrap();
    let post = http::Request::post("/x").body(()).unwrap();
    let keyed = http::Request::post("/x")
        .header("Idempotency-Key", "k1")
        .body(())
        .unwrap();
    assert!(get.is_idempotent());
    assert!(put.is_idempotent());
    assert!(!post.is_idempotent());
    assert!(keyed.is_idempotent());
}

#[tokio::test(start_paused = true)]
async fn jittered_delays_stay_within_the_exponential_caps() {
    let policy = RetryPolicy {
        max_attempts: 5,
        base: Duration::from_millis(100),
        max: Duration::from_millis(300),
        budget: Arc::new(RetryBudget::new(Duration::from_secs(10), 10_000, 1.0)),
    };
    // cap(n) = min(max, base · 2ⁿ) for retry n = 0, 1, 2, 3.
    let caps = [100, 200, 300, 300].map(Duration::from_millis);
    let mut delays: Vec<Vec<Duration>> = vec![Vec::new(); caps.len()];
    for _ in 0..40 {
        let stamps = Arc::new(Mutex::new(Vec::<Instant>::new()));
        let seen = stamps.clone();
        let (inner, calls) = scripted(move |_| {
            seen.lock().unwrap().push(Instant::now());
            Step::Fail { retryable: true }
        });
        let service = RetryLayer::new(policy.clone()).layer(inner);
        assert!(service.oneshot(Idempotency::safe(())).await.is_err());
        assert_eq!(calls.get(), 5);
        let stamps = stamps.lock().unwrap();
        for (n, pair) in stamps.windows(2).enumerate() {
            let delay = pair[1] - pair[0];
            assert!(
                delay <= caps[n],
                "retry {n} slept {delay:?}, over its cap {:?}",
                caps[n]
            );
            delays[n].push(delay);
        }
    }
    for (n, seen) in delays.iter().enumerate() {
        let min = seen.iter().min().unwrap();
        let max = seen.iter().max().unwrap();
        // Full jitter: over 40 draws the delays spread over the range (a fixed or
        // equal-jitter back-off would fail the lower bound).
        assert!(
            *min < caps[n] / 2 && max > min,
            "retry {n}: delays {seen:?} are not spread over [0, {:?}]",
            caps[n]
        );
    }
}

#[test]
fn backoff_draws_cover_zero_to_the_cap() {
    let policy = RetryPolicy {
        base: Duration::from_millis(50),
        max: Duration::from_secs(1),
        ..RetryPolicy::default()
    };
    assert_eq!(policy.backoff_cap(0), Duration::from_millis(50));
    assert_eq!(policy.backoff_cap(3), Duration::from_millis(400));
    assert_eq!(policy.backoff_cap(5), Duration::from_secs(1));
    assert_eq!(policy.backoff_cap(200), Duration::from_secs(1));
    let mut rng = rand::thread_rng();
    let draws: Vec<Duration> = (0..2_000).map(|_| policy.backoff(2, &mut rng)).collect();
    let cap = Duration::from_millis(200);
    assert!(draws.iter().all(|d| *d <= cap));
    assert!(draws.iter().any(|d| *d < cap / 4));
    assert!(draws.iter().any(|d| *d > cap * 3 / 4));
}

#[tokio::test(start_paused = true)]
async fn the_budget_stops_a_retry_storm() {
    // Without a budget, 100 requests against a dead dependency make 300 calls.
    let (inner, calls) = scripted(|_| Step::Fail { retryable: true });
    let unbudgeted = RetryLayer::new(RetryPolicy {
        max_attempts: 3,
        budget: Arc::new(RetryBudget::new(Duration::from_secs(10), 1_000, 1.0)),
        ..RetryPolicy::default()
    })
    .layer(inner);
    for _ in 0..100 {
        let _ = unbudgeted.clone().oneshot(Idempotency::safe(())).await;
    }
    assert_eq!(calls.get(), 300);

    // With 10 % of requests as the budget (and no floor), at most 10 retries go out.
    let budget = Arc::new(RetryBudget::new(Duration::from_secs(10), 0, 0.1));
    let (inner, calls) = scripted(|_| Step::Fail { retryable: true });
    let budgeted = RetryLayer::new(RetryPolicy {
        max_attempts: 3,
        budget: budget.clone(),
        ..RetryPolicy::default()
    })
    .layer(inner);
    for _ in 0..100 {
        let _ = budgeted.clone().oneshot(Idempotency::safe(())).await;
    }
    let retries = calls.get() - 100;
    assert!(retries > 0, "the budget allows some retries");
    assert!(
        retries <= 10,
        "{retries} retries exceed 10 % of 100 requests"
    );
    assert_eq!(budget.remaining(), 0);
}

#[tokio::test(start_paused = true)]
async fn does_not_retry_a_local_rejection() {
    let (inner, calls) = scripted::<Idempotency<()>>(|_| Step::Ok);
    // A service that reports an open breaker: retrying it would only add load.
    let rejecting = tower::service_fn(move |req: Idempotency<()>| {
        let inner = inner.clone();
        async move {
            let _ = inner.oneshot(req).await;
            Err::<usize, _>(ResilienceError::<Boom>::Open)
        }
    });
    let service = RetryLayer::new(policy(5)).layer(rejecting);
    let err = service.oneshot(Idempotency::safe(())).await.unwrap_err();
    assert!(matches!(err, ResilienceError::Open));
    assert_eq!(calls.get(), 1);
}
