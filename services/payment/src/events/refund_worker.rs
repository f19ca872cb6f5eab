//! Performs the refunds that events asked for.

use std::{sync::Arc, time::Duration};

use bazaar_runtime::time::now_micros;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    domain::{PaymentStatus, RefundReason},
    payments::Payments,
    store::refund_requests::{self, RefundRequest},
};

/// How many requests one pass takes.
const BATCH: i64 = 20;

/// The first retry delay; doubled per attempt up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_millis(500);

/// The longest pause between attempts of one request.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Runs open refund requests until stopped: woken by the handler, and at least every
/// `poll` (requests recorded by a transaction that committed after a wake, or due retries).
#[derive(Debug, Clone)]
pub struct RefundWorker {
    payments: Payments,
    wake: Arc<Notify>,
    poll: Duration,
}

impl RefundWorker {
    /// A worker refunding through `payments`, woken by `wake`.
    pub fn new(payments: Payments, wake: Arc<Notify>, poll: Duration) -> Self {
        RefundWorker {
            payments,
            wake,
            poll,
        }
    }

    /// Works until `stop` is cancelled.
    pub async fn run(self, stop: CancellationToken) -> anyhow::Result<()> {
        loop {
            if let Err(e) = self.run_due().await {
                tracing::warn!(error = %format!("{e:#}"), "Refund worker pass failed.");
            }
            let pause = match refund_requests::next_due(self.payments.db()).await {
                Ok(Some(at)) => {
                    let wait = u64::try_from(at.saturating_sub(now_micros())).unwrap_or(0);
                    Duration::from_micros(wait).min(self.poll)
                }
                _ => self.poll,
            };
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = self.wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Attempts every due request once.
    async fn run_due(&self) -> anyhow::Result<()> {
        let db = self.payments.db();
        for request in refund_requests::due(db, now_micros(), BATCH).await? {
            self.attempt(&request).await?;
        }
        Ok(())
    }

    #[tracing::instrument(skip(self, request), fields(order_id = %request.order_id))]
    async fn attempt(&self, request: &RefundRequest) -> anyhow::Result<()> {
        let db = self.payments.db();
        let attempts = request.attempts + 1;
        let reason = RefundReason::parse(&request.reason)
            .unwrap_or_else(|_| RefundReason::shipment_failed());
        let retry = match self.payments.refund(&request.order_id, &reason).await {
            Ok(outcome) if outcome.status != PaymentStatus::Pending => {
                tracing::info!(
                    status = outcome.status.as_str(),
                    refunded_minor = outcome.refunded_minor,
                    "Refund request done."
                );
                return refund_requests::finish(
                    db,
                    &request.order_id,
                    attempts,
                    outcome.status.as_str(),
                    now_micros(),
                )
                .await;
            }
            Ok(_) => "the charge's outcome is not known yet".to_owned(),
            Err(e) => e.to_string(),
        };
        let delay = backoff(attempts);
        tracing::info!(attempts, error = %retry, delay_ms = delay.as_millis(), "Refund request will be retried.");
        let next =
            now_micros().saturating_add(i64::try_from(delay.as_micros()).unwrap_or(i64::MAX));
        refund_requests::retry_later(db, &request.order_id, attempts, next, &retry).await
    }
}

/// The pause before attempt `attempts + 1`.
fn backoff(attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    BASE_BACKOFF
        .saturating_mul(2u32.saturating_pow(exp))
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_ceiling() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(2));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }
}
