use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bazaar_resilience::{
    BreakerConfig, BreakerState, CircuitBreaker, Resilience, ResilienceError, RetryBudget,
    RetryPolicy,
};

use crate::Boom;

fn resilience(name: &str) -> Resilience {
    Resilience::new(CircuitBreaker::new(
        name,
        BreakerConfig {
            minimum_calls: 4,
            ..BreakerConfig::default()
        },
    ))
    .with_retry(RetryPolicy {
        max_attempts: 3,
        budget: Arc::new(RetryBudget::new(Duration::from_secs(10), 100, 0.2)),
        ..RetryPolicy::default()
    })
}

/// A closure call that fails its first `failures` attempts with `error`, counting attempts.
fn flaky(
    failures: usize,
    error: Boom,
) -> (
    impl Fn() -> std::future::Ready<Result<usize, Boom>> + Clone + Send + Sync + 'static,
    Arc<AtomicUsize>,
) {
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    let f = move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        std::future::ready(if n < failures {
            Err(error.clone())
        } else {
            Ok(n)
        })
    };
    (f, attempts)
}

#[tokio::test(start_paused = true)]
async fn a_closure_call_is_retried_when_idempotent() {
    let r = resilience("stack-retry");
    let (f, attempts) = flaky(2, Boom { retryable: true });
    assert_eq!(r.call(true, f).await.unwrap(), 2);
    assert_eq!(attempts.load(Ordering::SeqCst), 3);

    let (f, attempts) = flaky(2, Boom { retryable: true });
    assert!(r.call(false, f).await.is_err());
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn only_transient_errors_are_retried_and_counted_against_the_dependency() {
    let r = resilience("stack-classified");
    for _ in 0..10 {
        let (f, attempts) = flaky(usize::MAX, Boom { retryable: false });
        let err = r
            .call_classified(true, |e: &Boom| e.retryable, f)
            .await
            .unwrap_err();
        assert!(matches!(err, ResilienceError::Inner(_)));
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }
    // Ten permanent errors: the dependency answered every time.
    assert_eq!(r.breaker().state(), BreakerState::Closed);

    for _ in 0..2 {
        let (f, _) = flaky(usize::MAX, Boom { retryable: true });
        let _ = r.call_classified(true, |e: &Boom| e.retryable, f).await;
    }
    // Transient failures on every attempt: 6 failures of 16 calls is under 50 %…
    assert_eq!(r.breaker().state(), BreakerState::Closed);
    for _ in 0..2 {
        let (f, _) = flaky(usize::MAX, Boom { retryable: true });
        let _ = r.call_classified(true, |e: &Boom| e.retryable, f).await;
    }
    // …and 10 of 20 reaches it.
    assert_eq!(r.breaker().state(), BreakerState::Open);
    let (f, attempts) = flaky(0, Boom { retryable: true });
    let err = r.call(true, f).await.unwrap_err();
    assert!(matches!(err, ResilienceError::Open));
    assert_eq!(attempts.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_hung_attempt_times_out_counts_as_a_failure_and_is_retried() {
    let r = resilience("stack-hung")
        .with_timeout(Duration::from_secs(10))
        .with_attempt_timeout(Duration::from_millis(500));
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    let hung = move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<Result<(), Boom>>().await
        }
    };
    let err = r.call(true, hung).await.unwrap_err();
    assert!(matches!(err, ResilienceError::Timeout));
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(r.breaker().snapshot().failures, 3);
}
