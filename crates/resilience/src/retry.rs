//! [`RetryLayer`]: retries idempotent requests on retryable errors, with exponential
//! back-off, full jitter and a shared [`RetryBudget`].
//!
//! Protects against transient failures (a dropped connection, an instance restarting)
//! without turning an outage into a retry storm: only requests that are safe to repeat
//! ([`Idempotent`]) are retried, only for errors the classifier calls retryable, at most
//! `max_attempts` times, sleeping `rand(0, min(max, base · 2ⁿ))` before retry `n` (full
//! jitter, so clients that failed together do not come back together), and only while
//! the budget has room.

mod budget;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rand::Rng;
use tower::{Layer, Service, ServiceExt};

pub use budget::RetryBudget;

use crate::error::ResilienceError;

/// How a [`RetryLayer`] retries.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 3). 1 disables retries.
    pub max_attempts: u32,
    /// The back-off cap of the first retry (default 50 ms); it doubles per retry.
    pub base: Duration,
    /// The largest back-off cap (default 1 s).
    pub max: Duration,
    /// Shared by every client of one dependency (default [`RetryBudget::default`]).
    pub budget: Arc<RetryBudget>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(50),
            max: Duration::from_secs(1),
            budget: Arc::new(RetryBudget::default()),
        }
    }
}

impl RetryPolicy {
    /// The upper bound of the sleep before retry `retry` (0 for the first retry):
    /// `min(max, base · 2^retry)`.
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// A full-jitter sleep before retry `retry`: uniform in `[0, backoff_cap(retry)]`.
    pub fn backoff<R: Rng + ?Sized>(&self, retry: u32, rng: &mut R) -> Duration {
        let cap = u64::try_from(self.backoff_cap(retry).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.gen_range(0..=cap))
    }
}

/// A request that says whether sending it twice is safe.
pub trait Idempotent {
    /// True when repeating the request has the same effect as sending it once.
    fn is_idempotent(&self) -> bool;
}

/// Safe methods (GET, HEAD, OPTIONS, TRACE), PUT and DELETE are idempotent, and so is any
/// request carrying an `Idempotency-Key` (the server deduplicates it).
impl<B> Idempotent for http::Request<B> {
    fn is_idempotent(&self) -> bool {
        self.method().is_idempotent() || self.headers().contains_key("idempotency-key")
    }
}

/// Marks any request as idempotent (or not) explicitly, e.g. a gRPC call the caller
/// knows is safe to repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency<T> {
    /// The request.
    pub request: T,
    /// Whether it may be retried.
    pub idempotent: bool,
}

impl<T> Idempotency<T> {
    /// `request`, safe to repeat.
    pub fn safe(request: T) -> Self {
        Idempotency {
            request,
            idempotent: true,
        }
    }

    /// `request`, never repeated.
    pub fn unsafe_to_repeat(request: T) -> Self {
        Idempotency {
            request,
            idempotent: false,
        }
    }
}

impl<T> Idempotent for Idempotency<T> {
    fn is_idempotent(&self) -> bool {
        self.idempotent
    }
}

/// Decides which errors are worth another attempt.
pub trait RetryClassifier<E> {
    /// True when another attempt may succeed.
    fn is_retryable(&self, error: &ResilienceError<E>) -> bool;
}

/// Retries inner errors and timeouts; never an open breaker or a full bulkhead (retrying
/// a local rejection only adds load).
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryAll;

impl<E> RetryClassifier<E> for RetryAll {
    fn is_retryable(&self, error: &ResilienceError<E>) -> bool {
        matches!(error, ResilienceError::Inner(_) | ResilienceError::Timeout)
    }
}

/// Retries an inner error when the function says so, and timeouts.
#[derive(Debug, Clone, Copy)]
pub struct RetryIf<F>(pub F);

impl<E, F> RetryClassifier<E> for RetryIf<F>
where
    F: Fn(&E) -> bool,
{
    fn is_retryable(&self, error: &ResilienceError<E>) -> bool {
        match error {
            ResilienceError::Inner(e) => (self.0)(e),
            ResilienceError::Timeout => true,
            _ => false,
        }
    }
}

/// Retries failed calls according to a [`RetryPolicy`]. Requests must be [`Clone`] and
/// [`Idempotent`]; the wrapped service must be [`Clone`] (each call drives its own copy).
#[derive(Debug, Clone)]
pub struct RetryLayer<C = RetryAll> {
    policy: Arc<RetryPolicy>,
    classifier: C,
}

impl RetryLayer {
    /// A layer retrying inner errors and timeouts ([`RetryAll`]) under `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        RetryLayer {
            policy: Arc::new(policy),
            classifier: RetryAll,
        }
    }
}

impl<C> RetryLayer<C> {
    /// Retry an inner error only when `retryable` says so (timeouts are still retried).
    pub fn retry_if<F>(self, retryable: F) -> RetryLayer<RetryIf<F>> {
        RetryLayer {
            policy: self.policy,
            classifier: RetryIf(retryable),
        }
    }

    /// Decide with any [`RetryClassifier`].
    pub fn classify_with<C2>(self, classifier: C2) -> RetryLayer<C2> {
        RetryLayer {
            policy: self.policy,
            classifier,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }
}

impl<S, C: Clone> Layer<S> for RetryLayer<C> {
    type Service = Retry<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry {
            inner,
            policy: self.policy.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

/// The service made by [`RetryLayer`].
#[derive(Debug, Clone)]
pub struct Retry<S, C = RetryAll> {
    inner: S,
    policy: Arc<RetryPolicy>,
    classifier: C,
}

impl<S, C> Retry<S, C> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// The future of [`Retry`].
pub type RetryFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, ResilienceError<E>>> + Send>>;

impl<S, C, Req, E> Service<Req> for Retry<S, C>
where
    S: Service<Req, Error = ResilienceError<E>> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send,
    C: RetryClassifier<E> + Clone + Send + 'static,
    Req: Idempotent + Clone + Send + 'static,
    E: Send + 'static,
{
    type Response = S::Response;
    type Error = ResilienceError<E>;
    type Future = RetryFuture<S::Response, E>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        // The copy that was polled ready makes the first attempt; a fresh clone stays.
        let clone = self.inner.clone();
        let mut service = std::mem::replace(&mut self.inner, clone);
        let policy = self.policy.clone();
        let classifier = self.classifier.clone();
        Box::pin(async move {
            policy.budget.deposit();
            if policy.max_attempts <= 1 || !req.is_idempotent() {
                return service.call(req).await;
            }
            let mut result = service.call(req.clone()).await;
            let mut attempt = 1;
            loop {
                let error = match result {
                    Ok(response) => return Ok(response),
                    Err(error) => error,
                };
                if attempt >= policy.max_attempts || !classifier.is_retryable(&error) {
                    return Err(error);
                }
                if !policy.budget.withdraw() {
                    metrics::counter!("bazaar_retry_budget_exhausted_total").increment(1);
                    tracing::debug!(attempt, "Retry budget exhausted; not retrying.");
                    return Err(error);
                }
                let delay = policy.backoff(attempt - 1, &mut rand::thread_rng());
                tracing::debug!(attempt, error = error.kind(), ?delay, "Retrying call.");
                metrics::counter!("bazaar_retries_total").increment(1);
                tokio::time::sleep(delay).await;
                attempt += 1;
                result = match service.ready().await {
                    Ok(ready) => ready.call(req.clone()).await,
                    Err(error) => Err(error),
                };
            }
        })
    }
}
