//! [`BulkheadLayer`]: a limit on concurrent calls to one dependency, with a bounded wait.
//!
//! Protects the caller from a slow dependency eating all its resources: without a limit,
//! every request stuck on a slow upstream holds a task, memory and a connection, and the
//! calls to healthy dependencies starve too. At most `max_concurrent` calls run; a call
//! waits at most `queue_timeout` for a slot and is then refused with
//! [`ResilienceError::BulkheadFull`] without reaching the service.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Semaphore;
use tower::{Layer, Service};

use crate::error::ResilienceError;

/// Limits concurrent calls. Every service made by one layer shares its slots.
#[derive(Debug, Clone)]
pub struct BulkheadLayer {
    semaphore: Arc<Semaphore>,
    queue_timeout: Duration,
    name: &'static str,
}

impl BulkheadLayer {
    /// At most `max_concurrent` calls at once; a call waits at most `queue_timeout` for a slot.
    pub fn new(max_concurrent: usize, queue_timeout: Duration) -> Self {
        BulkheadLayer {
            semaphore: Arc::new(Semaphore::new(max_concurrent.min(Semaphore::MAX_PERMITS))),
            queue_timeout,
            name: "default",
        }
    }

    /// Names the bulkhead in the `bazaar_bulkhead_rejected_total{bulkhead}` counter.
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Free slots now.
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }
}

impl<S> Layer<S> for BulkheadLayer {
    type Service = Bulkhead<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Bulkhead {
            inner,
            semaphore: self.semaphore.clone(),
            queue_timeout: self.queue_timeout,
            name: self.name,
        }
    }
}

/// The service made by [`BulkheadLayer`].
#[derive(Debug, Clone)]
pub struct Bulkhead<S> {
    inner: S,
    semaphore: Arc<Semaphore>,
    queue_timeout: Duration,
    name: &'static str,
}

impl<S> Bulkhead<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// The future of [`Bulkhead`].
pub type BulkheadFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, ResilienceError<E>>> + Send>>;

impl<S, Req, E> Service<Req> for Bulkhead<S>
where
    S: Service<Req, Error = ResilienceError<E>> + Clone + Send + 'static,
    S::Future: Send,
    Req: Send + 'static,
    E: Send + 'static,
{
    type Response = S::Response;
    type Error = ResilienceError<E>;
    type Future = BulkheadFuture<S::Response, E>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        // A free slot: call now, keeping the service that was polled ready.
        if let Ok(permit) = self.semaphore.clone().try_acquire_owned() {
            let future = self.inner.call(req);
            return Box::pin(async move {
                let result = future.await;
                drop(permit);
                result
            });
        }
        let clone = self.inner.clone();
        let mut service = std::mem::replace(&mut self.inner, clone);
        let semaphore = self.semaphore.clone();
        let queue_timeout = self.queue_timeout;
        let name = self.name;
        Box::pin(async move {
            let permit = match tokio::time::timeout(queue_timeout, semaphore.acquire_owned()).await
            {
                Ok(Ok(permit)) => permit,
                // Timed out waiting (or the semaphore was closed, which this crate never does).
                _ => {
                    metrics::counter!("bazaar_bulkhead_rejected_total", "bulkhead" => name)
                        .increment(1);
                    return Err(ResilienceError::BulkheadFull);
                }
            };
            let result = service.call(req).await;
            drop(permit);
            result
        })
    }
}
