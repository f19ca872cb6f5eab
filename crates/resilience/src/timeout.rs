//! [`TimeoutLayer`]: a deadline on each call.
//!
//! Protects the caller from a dependency that never answers: without it a hung upstream
//! holds the caller's task, connection and (through the bulkhead) a concurrency slot
//! forever. Outside the retry layer it bounds the whole call, retries and back-off
//! included; inside it, each attempt.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower::{Layer, Service};

use crate::error::ResilienceError;

/// Fails a call with [`ResilienceError::Timeout`] when it has not finished within the
/// duration (the inner future is dropped, which cancels it).
#[derive(Debug, Clone, Copy)]
pub struct TimeoutLayer {
    timeout: Duration,
}

impl TimeoutLayer {
    /// A layer giving each call `timeout`.
    pub const fn new(timeout: Duration) -> Self {
        TimeoutLayer { timeout }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Timeout {
            inner,
            timeout: self.timeout,
        }
    }
}

/// The service made by [`TimeoutLayer`].
#[derive(Debug, Clone)]
pub struct Timeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S> Timeout<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req, E> Service<Req> for Timeout<S>
where
    S: Service<Req, Error = ResilienceError<E>>,
{
    type Response = S::Response;
    type Error = ResilienceError<E>;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        TimeoutFuture {
            inner: self.inner.call(req),
            sleep: tokio::time::sleep(self.timeout),
        }
    }
}

pin_project! {
    /// The future of [`Timeout`].
    pub struct TimeoutFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Sleep,
    }
}

impl<F, T, E> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<T, ResilienceError<E>>>,
{
    type Output = Result<T, ResilienceError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(result) = this.inner.poll(cx) {
            return Poll::Ready(result);
        }
        match this.sleep.poll(cx) {
            Poll::Ready(()) => {
                metrics::counter!("bazaar_resilience_timeouts_total").increment(1);
                Poll::Ready(Err(ResilienceError::Timeout))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
