//! [`Resilience`]: the standard client stack for one dependency, as one value, for code
//! that calls through closures (tonic clients, `reqwest`) rather than a `tower::Service`.

use std::future::Future;
use std::time::Duration;

use tower::{ServiceBuilder, ServiceExt};

use crate::{
    BulkheadLayer, CircuitBreaker, CircuitBreakerLayer, Idempotency, LiftLayer, ResilienceError,
    RetryLayer, RetryPolicy, TimeoutLayer,
};

/// `timeout → retry → circuit breaker → bulkhead → per-attempt timeout` around one call.
/// Cheap to clone; clones share the breaker, the bulkhead's slots and the retry budget.
///
/// ```
/// # async fn demo() {
/// use bazaar_resilience::{BreakerConfig, CircuitBreaker, Resilience};
/// let inventory = Resilience::new(CircuitBreaker::new("inventory", BreakerConfig::default()));
/// let answer: Result<u32, _> = inventory
///     .call(true, || async { Ok::<u32, std::io::Error>(7) })
///     .await;
/// assert_eq!(answer.unwrap(), 7);
/// # }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo());
/// ```
#[derive(Debug, Clone)]
pub struct Resilience {
    timeout: Duration,
    attempt_timeout: Duration,
    retry: RetryLayer,
    breaker: CircuitBreaker,
    bulkhead: BulkheadLayer,
}

impl Resilience {
    /// Defaults: 5 s for the whole call, no per-attempt timeout, [`RetryPolicy::default`],
    /// a bulkhead of 64 concurrent calls with a 100 ms queue timeout.
    pub fn new(breaker: CircuitBreaker) -> Self {
        Resilience {
            timeout: Duration::from_secs(5),
            attempt_timeout: Duration::MAX,
            retry: RetryLayer::new(RetryPolicy::default()),
            breaker,
            bulkhead: BulkheadLayer::new(64, Duration::from_millis(100)),
        }
    }

    /// The deadline of the whole call, retries and back-off included.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A deadline per attempt: a hung attempt becomes a timeout the breaker counts as a
    /// failure and the retry layer may retry.
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// How to retry.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = RetryLayer::new(policy);
        self
    }

    /// The concurrency limit and how long a call may wait for a slot.
    pub fn with_bulkhead(mut self, max_concurrent: usize, queue_timeout: Duration) -> Self {
        self.bulkhead = BulkheadLayer::new(max_concurrent, queue_timeout);
        self
    }

    /// The breaker calls go through.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// Makes the call `f()` through the stack; every error of `f` counts as the
    /// dependency's failure and, when `idempotent`, is retried.
    pub async fn call<F, Fut, T, E>(&self, idempotent: bool, f: F) -> Result<T, ResilienceError<E>>
    where
        F: Fn() -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        self.call_classified(idempotent, |_: &E| true, f).await
    }

    /// Like [`Resilience::call`], but only errors `transient` says are the dependency's
    /// fault (unavailable, deadline exceeded, 5xx) count as breaker failures and are
    /// retried; the others (invalid argument, not found, 4xx) mean it answered.
    pub async fn call_classified<F, Fut, T, E, P>(
        &self,
        idempotent: bool,
        transient: P,
        f: F,
    ) -> Result<T, ResilienceError<E>>
    where
        F: Fn() -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
        P: Fn(&E) -> bool + Clone + Send + Sync + 'static,
    {
        let request = Idempotency {
            request: f,
            idempotent,
        };
        let client = tower::service_fn(|req: Idempotency<F>| (req.request)());
        let service = ServiceBuilder::new()
            // The caller's deadline for everything below.
            .layer(TimeoutLayer::new(self.timeout))
            // Outside the breaker, so each attempt asks it (and `Open` stops the retries).
            .layer(self.retry.clone().retry_if(transient.clone()))
            // Sees every attempt, its latency and its outcome.
            .layer(CircuitBreakerLayer::new(self.breaker.clone()).failure_if(transient))
            // Inside the breaker: a full bulkhead is our overload, not the dependency's fault.
            .layer(self.bulkhead.clone())
            // Per attempt, after a slot was found: a hung attempt is a counted timeout.
            .layer(TimeoutLayer::new(self.attempt_timeout))
            .layer(LiftLayer::new())
            .service(client);
        service.oneshot(request).await
    }
}
