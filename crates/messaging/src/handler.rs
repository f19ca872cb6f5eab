//! What a consumer implements: a handler that applies one event inside a transaction.

use bazaar_store::Tx;
use futures::future::BoxFuture;

use crate::envelope::Envelope;

/// Why a handler did not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// A failure that may pass (database busy, a peer down): the event is retried with
    /// backoff, and dead-lettered after the last attempt.
    #[error("{0:#}")]
    Retry(anyhow::Error),
    /// A failure no retry can fix (undecodable payload, an impossible state): the event is
    /// dead-lettered at once.
    #[error("{0:#}")]
    Permanent(anyhow::Error),
}

impl HandlerError {
    /// A retryable failure described by `msg`.
    pub fn retry(msg: impl std::fmt::Display) -> Self {
        HandlerError::Retry(anyhow::anyhow!("{msg}"))
    }

    /// A permanent failure described by `msg`.
    pub fn permanent(msg: impl std::fmt::Display) -> Self {
        HandlerError::Permanent(anyhow::anyhow!("{msg}"))
    }

    /// Whether retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, HandlerError::Permanent(_))
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        HandlerError::Retry(e.into())
    }
}

impl From<anyhow::Error> for HandlerError {
    fn from(e: anyhow::Error) -> Self {
        HandlerError::Retry(e)
    }
}

/// Applies events of one subscription.
///
/// `handle` runs inside the consumer's transaction, which also records the event id in the
/// inbox: the handler's writes (through `tx`) commit together with that record or not at all.
/// A duplicate delivery is acknowledged without calling the handler. An `Err` rolls the
/// transaction back; the event is retried with backoff and, after the last attempt (default
/// 8) or at once for [`HandlerError::Permanent`], stored as a dead letter.
///
/// Keep handlers short and local: on SQLite the transaction holds the only write connection,
/// so never make a network call while holding it.
pub trait Handler: Send + Sync + 'static {
    /// Applies `event` using `tx`.
    fn handle<'a>(
        &'a self,
        tx: &'a mut Tx,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;
}

impl<H: Handler + ?Sized> Handler for std::sync::Arc<H> {
    fn handle<'a>(
        &'a self,
        tx: &'a mut Tx,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        (**self).handle(tx, event)
    }
}
