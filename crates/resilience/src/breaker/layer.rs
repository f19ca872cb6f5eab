//! [`CircuitBreakerLayer`]: puts a [`CircuitBreaker`] in front of a service.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower::{Layer, Service};

use super::{CircuitBreaker, Permit};
use crate::error::ResilienceError;

/// What a finished call tells the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The dependency answered properly (slow if it took `slow_call_duration` or more).
    Success,
    /// The dependency is unhealthy.
    Failure,
    /// Says nothing about the dependency: not counted.
    Ignore,
}

/// Decides what a call's result means for the breaker.
pub trait Classify<Res, E> {
    /// The outcome of a finished call.
    fn classify(&self, result: &Result<Res, ResilienceError<E>>) -> Outcome;
}

/// Responses are successes; inner errors and timeouts are failures; rejections by a
/// bulkhead inside the breaker are ignored (they are local, not the dependency's fault).
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultClassifier;

impl<Res, E> Classify<Res, E> for DefaultClassifier {
    fn classify(&self, result: &Result<Res, ResilienceError<E>>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(ResilienceError::Inner(_) | ResilienceError::Timeout) => Outcome::Failure,
            Err(_) => Outcome::Ignore,
        }
    }
}

/// Like [`DefaultClassifier`], but an inner error is a failure only when the function
/// says so (otherwise the dependency did answer: a success).
#[derive(Debug, Clone, Copy)]
pub struct FailureIf<F>(pub F);

impl<Res, E, F> Classify<Res, E> for FailureIf<F>
where
    F: Fn(&E) -> bool,
{
    fn classify(&self, result: &Result<Res, ResilienceError<E>>) -> Outcome {
        match result {
            Err(ResilienceError::Inner(e)) if !(self.0)(e) => Outcome::Success,
            other => DefaultClassifier.classify(other),
        }
    }
}

/// Any `Fn(&Result<Res, ResilienceError<E>>) -> Outcome`, e.g. to count HTTP 5xx
/// responses as failures.
#[derive(Debug, Clone, Copy)]
pub struct ClassifyFn<F>(pub F);

impl<Res, E, F> Classify<Res, E> for ClassifyFn<F>
where
    F: Fn(&Result<Res, ResilienceError<E>>) -> Outcome,
{
    fn classify(&self, result: &Result<Res, ResilienceError<E>>) -> Outcome {
        (self.0)(result)
    }
}

/// Wraps a service in a circuit breaker: calls fail fast with [`ResilienceError::Open`]
/// (without reaching the service) while the breaker is open, and every call's outcome and
/// latency is reported to it.
///
/// A call cancelled by its caller (an outer timeout) after running for at least
/// `slow_call_duration` is reported as a slow call; one cancelled sooner is not counted.
#[derive(Debug, Clone)]
pub struct CircuitBreakerLayer<C = DefaultClassifier> {
    breaker: CircuitBreaker,
    classifier: C,
}

impl CircuitBreakerLayer {
    /// A layer reporting to `breaker` with the [`DefaultClassifier`].
    pub fn new(breaker: CircuitBreaker) -> Self {
        CircuitBreakerLayer {
            breaker,
            classifier: DefaultClassifier,
        }
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// Count an inner error as a failure only when `is_failure` says so.
    pub fn failure_if<F>(self, is_failure: F) -> CircuitBreakerLayer<FailureIf<F>> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classifier: FailureIf(is_failure),
        }
    }

    /// Classify whole results (responses too) with `f`.
    pub fn classify_with<F>(self, f: F) -> CircuitBreakerLayer<ClassifyFn<F>> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classifier: ClassifyFn(f),
        }
    }

    /// The breaker this layer reports to.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService {
            inner,
            breaker: self.breaker.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

/// The service made by [`CircuitBreakerLayer`].
#[derive(Debug, Clone)]
pub struct CircuitBreakerService<S, C = DefaultClassifier> {
    inner: S,
    breaker: CircuitBreaker,
    classifier: C,
}

impl<S, C> CircuitBreakerService<S, C> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, Req, E> Service<Req> for CircuitBreakerService<S, C>
where
    S: Service<Req, Error = ResilienceError<E>>,
    C: Classify<S::Response, E> + Clone,
{
    type Response = S::Response;
    type Error = ResilienceError<E>;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self.breaker.try_acquire() {
            Ok(permit) => ResponseFuture {
                inner: Some(self.inner.call(req)),
                call: InFlight {
                    permit: Some(permit),
                    start: Instant::now(),
                    slow: self.breaker.config().slow_call_duration,
                },
                classifier: self.classifier.clone(),
            },
            Err(_) => ResponseFuture {
                inner: None,
                call: InFlight {
                    permit: None,
                    start: Instant::now(),
                    slow: Duration::MAX,
                },
                classifier: self.classifier.clone(),
            },
        }
    }
}

/// A call in flight; reports a cancellation when dropped unfinished.
struct InFlight {
    permit: Option<Permit>,
    start: Instant,
    slow: Duration,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            let latency = self.start.elapsed();
            if latency >= self.slow {
                // Given up on after running long enough to be slow: that is what it was.
                permit.success(latency);
            } else {
                permit.ignore();
            }
        }
    }
}

pin_project! {
    /// The future of [`CircuitBreakerService`].
    pub struct ResponseFuture<F, C> {
        #[pin]
        inner: Option<F>,
        call: InFlight,
        classifier: C,
    }
}

impl<F, C, Res, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<Res, ResilienceError<E>>>,
    C: Classify<Res, E>,
{
    type Output = Result<Res, ResilienceError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(inner) = this.inner.as_pin_mut() else {
            return Poll::Ready(Err(ResilienceError::Open));
        };
        let result = std::task::ready!(inner.poll(cx));
        if let Some(permit) = this.call.permit.take() {
            match this.classifier.classify(&result) {
                Outcome::Success => permit.success(this.call.start.elapsed()),
                Outcome::Failure => permit.failure(),
                Outcome::Ignore => permit.ignore(),
            }
        }
        Poll::Ready(result)
    }
}
