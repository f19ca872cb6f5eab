use bazaar_resilience::{
    fallback, BreakerConfig, CircuitBreaker, CircuitBreakerLayer, FallbackLayer, ResilienceError,
};
use tower::{Layer, ServiceExt};

use crate::{scripted, Boom, Step};

#[tokio::test(start_paused = true)]
async fn answers_with_the_fallback_when_the_call_fails() {
    let (inner, calls) = scripted::<()>(|_| Step::Fail { retryable: true });
    let service = FallbackLayer::new(|_e: ResilienceError<Boom>| Ok(usize::MAX)).layer(inner);
    assert_eq!(service.oneshot(()).await.unwrap(), usize::MAX);
    assert_eq!(calls.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn successful_answers_are_not_replaced() {
    let (inner, _) = scripted::<()>(|_| Step::Ok);
    let service = fallback(inner, |_e: ResilienceError<Boom>| Ok(usize::MAX));
    assert_eq!(service.oneshot(()).await.unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn errors_the_fallback_declines_pass_through() {
    let (inner, _) = scripted::<()>(|_| Step::Fail { retryable: false });
    // Only fall back on an open breaker; a real error stays an error.
    let service = fallback(inner, |e: ResilienceError<Boom>| match e {
        ResilienceError::Open => Ok(usize::MAX),
        other => Err(other),
    });
    let err = service.oneshot(()).await.unwrap_err();
    assert!(matches!(
        err,
        ResilienceError::Inner(Boom { retryable: false })
    ));
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_is_answered_by_the_fallback() {
    let breaker = CircuitBreaker::new(
        "fallback-open",
        BreakerConfig {
            minimum_calls: 2,
            ..BreakerConfig::default()
        },
    );
    let (inner, calls) = scripted::<()>(|_| Step::Fail { retryable: true });
    let service = fallback(
        CircuitBreakerLayer::new(breaker.clone()).layer(inner),
        |e: ResilienceError<Boom>| match e {
            ResilienceError::Open => Ok(usize::MAX),
            other => Err(other),
        },
    );
    assert!(service.clone().oneshot(()).await.is_err());
    assert!(service.clone().oneshot(()).await.is_err());
    // Open now: the degraded answer, without calling the dependency.
    assert_eq!(service.clone().oneshot(()).await.unwrap(), usize::MAX);
    assert_eq!(calls.get(), 2);
}
