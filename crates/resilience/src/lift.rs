//! [`LiftLayer`]: turns a plain service's error `E` into [`ResilienceError::Inner`], so the
//! other layers (which all speak `ResilienceError<E>`) can stack on it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::error::ResilienceError;

/// The innermost layer of a resilience stack: wraps the client's error in
/// [`ResilienceError::Inner`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LiftLayer;

impl LiftLayer {
    /// The layer.
    pub const fn new() -> Self {
        LiftLayer
    }
}

impl<S> Layer<S> for LiftLayer {
    type Service = Lift<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Lift { inner }
    }
}

/// Wraps `service`'s errors in [`ResilienceError::Inner`].
pub fn lift<S>(service: S) -> Lift<S> {
    Lift { inner: service }
}

/// The service made by [`LiftLayer`] / [`lift`].
#[derive(Debug, Clone)]
pub struct Lift<S> {
    inner: S,
}

impl<S> Lift<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req> Service<Req> for Lift<S>
where
    S: Service<Req>,
{
    type Response = S::Response;
    type Error = ResilienceError<S::Error>;
    type Future = LiftFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ResilienceError::Inner)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        LiftFuture {
            inner: self.inner.call(req),
        }
    }
}

pin_project! {
    /// The future of [`Lift`].
    pub struct LiftFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, T, E> Future for LiftFuture<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, ResilienceError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project()
            .inner
            .poll(cx)
            .map_err(ResilienceError::Inner)
    }
}
