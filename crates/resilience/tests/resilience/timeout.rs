use std::time::Duration;

use bazaar_resilience::{ResilienceError, TimeoutLayer};
use tower::{Layer, ServiceExt};

use crate::{scripted, Step};

#[tokio::test(start_paused = true)]
async fn a_call_that_outlives_the_deadline_times_out() {
    let (inner, calls) = scripted::<()>(|_| Step::Sleep(Duration::from_secs(10)));
    let service = TimeoutLayer::new(Duration::from_secs(1)).layer(inner);
    let started = tokio::time::Instant::now();
    let result = service.oneshot(()).await;
    assert!(
        matches!(result, Err(ResilienceError::Timeout)),
        "{result:?}"
    );
    assert_eq!(calls.get(), 1);
    // Paused time: the clock moved exactly to the deadline, not to the inner sleep.
    assert_eq!(started.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_call_that_finishes_in_time_passes_through() {
    let (inner, _) = scripted::<()>(|_| Step::Sleep(Duration::from_millis(999)));
    let service = TimeoutLayer::new(Duration::from_secs(1)).layer(inner);
    assert_eq!(service.oneshot(()).await.unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_inner_error_is_not_a_timeout() {
    let (inner, _) = scripted::<()>(|_| Step::Fail { retryable: true });
    let service = TimeoutLayer::new(Duration::from_secs(1)).layer(inner);
    let err = service.oneshot(()).await.unwrap_err();
    assert!(matches!(err, ResilienceError::Inner(_)));
    // Display carries no internal detail of the inner error.
    assert_eq!(err.to_string(), "the call failed");
    assert!(!format!("{err}").contains("10.0.0.7"));
}
