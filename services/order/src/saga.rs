//! The order saga's orchestrator: a background worker per instance that claims due sagas
//! with a lease and runs their current step.
//!
//! A saga is a row (`sagas`): the step to run next, when, and who holds it. A worker claims
//! due sagas in one conditional `UPDATE … RETURNING` under a fresh fencing token, runs each
//! step's remote call with no transaction open, and records the outcome in one transaction
//! that also changes the order, publishes its event (outbox), moves the saga to its next
//! step and releases the lease — but only while the token still holds the lease and the saga
//! is still at that step. So a crash anywhere leaves either the old state (the step runs
//! again after the lease; every call is idempotent by order id) or the new one, never half;
//! two instances never run one saga at once; and a cancel that moved the saga on while a
//! step was running wins over that step's outcome.

mod steps;

use std::{sync::Arc, time::Duration};

use bazaar_messaging::Bus;
use bazaar_runtime::time::now_micros;
use bazaar_store::Db;
use tokio::{sync::Notify, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{clients::Clients, store::sagas};

/// How the saga worker runs.
#[derive(Debug, Clone)]
pub struct SagaConfig {
    /// The deadline of each gRPC call of a step. The payment call must outlast payment's own
    /// timeout towards the provider (2 s), or every slow charge would look unanswered.
    pub step_timeout: Duration,
    /// The wait after a step's first failure (doubling, with jitter).
    pub base_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// Failed attempts of one step after which the saga is parked as `stuck`.
    pub max_attempts_per_step: u32,
    /// How long a claim holds a saga (must be far longer than a step takes).
    pub lease: Duration,
    /// How often the worker looks for due sagas when nothing woke it.
    pub poll_interval: Duration,
}

impl Default for SagaConfig {
    fn default() -> Self {
        SagaConfig {
            step_timeout: Duration::from_secs(3),
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            max_attempts_per_step: 30,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(250),
        }
    }
}

/// Sagas one worker runs at once.
const CONCURRENCY: usize = 16;

/// How often the `bazaar_sagas` gauge is refreshed.
const GAUGE_INTERVAL: Duration = Duration::from_secs(2);

/// What the worker's tasks share.
pub(crate) struct Worker {
    pub(crate) db: Db,
    pub(crate) bus: Bus,
    pub(crate) clients: Clients,
    pub(crate) config: SagaConfig,
    pub(crate) payment_pending_deadline: Duration,
    pub(crate) instance_id: String,
    /// Woken when a saga becomes due now (placement, cancel, operator).
    pub(crate) wake: Arc<Notify>,
    /// The requests waiting for an order's status to change.
    pub(crate) changed: Arc<crate::waiters::OrderWaiters>,
}

impl Worker {
    /// Claims and runs due sagas until `stop` is cancelled; steps already running finish.
    pub(crate) async fn run(self: Arc<Self>, stop: CancellationToken) -> anyhow::Result<()> {
        let mut running: JoinSet<()> = JoinSet::new();
        let mut gauges_at = tokio::time::Instant::now();
        match sagas::release_leases_of(&self.db, &self.instance_id, now_micros()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                sagas = n,
                "Took back the sagas an earlier run of this instance held."
            ),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "Could not release old leases."),
        }
        tracing::info!(instance = %self.instance_id, "Saga worker started.");
        while !stop.is_cancelled() {
            while let Some(done) = running.try_join_next() {
                if let Err(e) = done {
                    tracing::error!(error = %e, "A saga step task failed.");
                }
            }
            let capacity = CONCURRENCY.saturating_sub(running.len());
            let mut full = false;
            if capacity > 0 {
                match self.claim(capacity).await {
                    Ok(claimed) => {
                        full = claimed.len() == capacity;
                        for c in claimed {
                            let me = self.clone();
                            running.spawn(async move { me.run_claimed(c).await });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "Could not claim due sagas.");
                    }
                }
            }
            if tokio::time::Instant::now() >= gauges_at {
                gauges_at = tokio::time::Instant::now() + GAUGE_INTERVAL;
                self.update_gauges().await;
            }
            if full {
                // More may be due: look again as soon as a slot frees.
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = running.join_next() => {}
                }
                continue;
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.config.poll_interval) => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
        while running.join_next().await.is_some() {}
        tracing::info!(instance = %self.instance_id, "Saga worker stopped.");
        Ok(())
    }

    async fn claim(&self, capacity: usize) -> anyhow::Result<Vec<sagas::Claimed>> {
        let token = format!("{}:{}", self.instance_id, uuid::Uuid::now_v7());
        let lease_us = i64::try_from(self.config.lease.as_micros()).unwrap_or(i64::MAX);
        sagas::claim_due(
            &self.db,
            &token,
            now_micros(),
            lease_us,
            i64::try_from(capacity).unwrap_or(1),
        )
        .await
    }

    async fn update_gauges(&self) {
        match sagas::counts(&self.db).await {
            Ok(counts) => {
                for (status, n) in counts {
                    #[allow(clippy::cast_precision_loss)]
                    metrics::gauge!("bazaar_sagas", "service" => crate::SERVICE, "status" => status.as_str())
                        .set(n as f64);
                }
            }
            Err(e) => tracing::debug!(error = %format!("{e:#}"), "Could not count sagas."),
        }
    }
}

/// Counts an order outcome in `bazaar_orders_total{outcome}`.
pub(crate) fn count_outcome(outcome: &'static str) {
    metrics::counter!("bazaar_orders_total", "service" => crate::SERVICE, "outcome" => outcome)
        .increment(1);
}
