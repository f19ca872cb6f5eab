//! The errors the resilience layers add to a call's own error.

use std::sync::Arc;
use std::time::Duration;

/// The error of a call made through the resilience layers.
///
/// Every layer of this crate has this as its error type, so a stack of them
/// (`timeout → retry → breaker → bulkhead`) reports one flat error instead of a nest.
/// `Display` says which protection answered and never carries the inner error's text (it
/// can hold addresses or upstream bodies); the inner error stays reachable through
/// [`std::error::Error::source`] and [`ResilienceError::into_inner`] for logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResilienceError<E> {
    /// The call took longer than the timeout allowed.
    #[error("the call timed out")]
    Timeout,
    /// The circuit breaker is open (or half-open with all probes taken): the call was not made.
    #[error("the circuit breaker is open")]
    Open,
    /// The bulkhead had no free slot within its queue timeout: the call was not made.
    #[error("too many concurrent calls")]
    BulkheadFull,
    /// The wrapped service failed.
    #[error("the call failed")]
    Inner(#[source] E),
}

impl<E> ResilienceError<E> {
    /// The wrapped service's error, if that is what this is.
    pub fn inner(&self) -> Option<&E> {
        match self {
            ResilienceError::Inner(e) => Some(e),
            _ => None,
        }
    }

    /// The wrapped service's error, if that is what this is.
    pub fn into_inner(self) -> Option<E> {
        match self {
            ResilienceError::Inner(e) => Some(e),
            _ => None,
        }
    }

    /// True when the call was refused locally (breaker open or bulkhead full) and the
    /// remote side never saw it.
    pub fn is_rejected(&self) -> bool {
        matches!(self, ResilienceError::Open | ResilienceError::BulkheadFull)
    }

    /// A stable short name for logs and metric labels: `timeout`, `open`, `bulkhead_full`, `inner`.
    pub fn kind(&self) -> &'static str {
        match self {
            ResilienceError::Timeout => "timeout",
            ResilienceError::Open => "open",
            ResilienceError::BulkheadFull => "bulkhead_full",
            ResilienceError::Inner(_) => "inner",
        }
    }

    /// Changes the inner error, keeping the other variants.
    pub fn map_inner<F, E2>(self, f: F) -> ResilienceError<E2>
    where
        F: FnOnce(E) -> E2,
    {
        match self {
            ResilienceError::Timeout => ResilienceError::Timeout,
            ResilienceError::Open => ResilienceError::Open,
            ResilienceError::BulkheadFull => ResilienceError::BulkheadFull,
            ResilienceError::Inner(e) => ResilienceError::Inner(f(e)),
        }
    }
}

/// [`crate::CircuitBreaker::try_acquire`] refused: the breaker is open, or half-open with
/// every probe slot taken. The caller should fail fast (for HTTP: 503 with `Retry-After`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the circuit breaker is open")]
pub struct BreakerOpen {
    pub(crate) name: Arc<str>,
    pub(crate) retry_after: Option<Duration>,
}

impl BreakerOpen {
    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long until the breaker lets a probe through (`None` when half-open: the probes
    /// in flight decide).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl<E> From<BreakerOpen> for ResilienceError<E> {
    fn from(_: BreakerOpen) -> Self {
        ResilienceError::Open
    }
}
