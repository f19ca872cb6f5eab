//! [`FallbackLayer`] / [`fallback`]: answer something useful when the call fails.
//!
//! Protects the caller's own users from a dependency's failure when a degraded answer is
//! better than an error: cached or default data, "payment pending" instead of "payment
//! failed". The function sees the error and either returns a response or passes the
//! error on, so it can fall back on (say) an open breaker but not on a validation error.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::error::ResilienceError;

/// On error, calls the function with the error: `Ok(response)` replaces the error,
/// `Err(error)` passes it on.
#[derive(Debug, Clone, Copy)]
pub struct FallbackLayer<F> {
    f: F,
}

impl<F> FallbackLayer<F> {
    /// A layer falling back with `f`.
    pub const fn new(f: F) -> Self {
        FallbackLayer { f }
    }
}

impl<S, F: Clone> Layer<S> for FallbackLayer<F> {
    type Service = Fallback<S, F>;

    fn layer(&self, inner: S) -> Self::Service {
        Fallback {
            inner,
            f: self.f.clone(),
        }
    }
}

/// Wraps `service` so its errors go through `f` (see [`FallbackLayer`]).
pub fn fallback<S, F>(service: S, f: F) -> Fallback<S, F> {
    Fallback { inner: service, f }
}

/// The service made by [`FallbackLayer`] / [`fallback`].
#[derive(Debug, Clone)]
pub struct Fallback<S, F> {
    inner: S,
    f: F,
}

impl<S, F> Fallback<S, F> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, F, Req, E> Service<Req> for Fallback<S, F>
where
    S: Service<Req, Error = ResilienceError<E>>,
    F: Fn(ResilienceError<E>) -> Result<S::Response, ResilienceError<E>> + Clone,
{
    type Response = S::Response;
    type Error = ResilienceError<E>;
    type Future = FallbackFuture<S::Future, F>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness errors are not answered with a fallback: the caller has no request yet.
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        FallbackFuture {
            inner: self.inner.call(req),
            f: Some(self.f.clone()),
        }
    }
}

pin_project! {
    /// The future of [`Fallback`].
    pub struct FallbackFuture<Fut, F> {
        #[pin]
        inner: Fut,
        f: Option<F>,
    }
}

impl<Fut, F, T, E> Future for FallbackFuture<Fut, F>
where
    Fut: Future<Output = Result<T, ResilienceError<E>>>,
    F: Fn(ResilienceError<E>) -> Result<T, ResilienceError<E>>,
{
    type Output = Result<T, ResilienceError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match std::task::ready!(this.inner.poll(cx)) {
            Ok(response) => Poll::Ready(Ok(response)),
            Err(error) => match this.f.take() {
                Some(f) => {
                    let kind = error.kind();
                    let result = f(error);
                    if result.is_ok() {
                        metrics::counter!("bazaar_fallbacks_total", "error" => kind).increment(1);
                    }
                    Poll::Ready(result)
                }
                None => Poll::Ready(Err(error)),
            },
        }
    }
}
