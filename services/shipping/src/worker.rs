//! The dispatch worker: claims due shipments from the order service and dispatches them.
//!
//! Every [`WorkerConfig::poll`] it leases a batch of due, open shipments (a conditional
//! `UPDATE … RETURNING`, so two instances never work on the same one) and for each:
//!
//! 1. calls order's `ClaimForShipment(order_id, shipment_id)` with a deadline;
//! 2. refused → `not_claimed`, no event (the customer's cancel won the race);
//! 3. granted → `claimed`, then the carrier stand-in decides and, in one transaction,
//!    `dispatched` + `ShipmentDispatchedV1` or `failed` + `ShipmentFailedV1`;
//! 4. the call failed (order down, deadline passed) → due again after a jittered backoff.
//!
//! Nothing is held across the gRPC call but the lease. A worker that dies after the claim
//! was granted leaves an open shipment whose lease expires; the next attempt claims again
//! (order grants a repeated claim) and goes on. Every write names the lease, so a worker
//! that lost its lease changes nothing.

use std::time::Duration;

use bazaar_contracts::events::{ShipmentDispatchedV1, ShipmentFailedV1};
use bazaar_messaging::Bus;
use bazaar_proto::{
    grpc::{self, ServiceChannels},
    order::{order_client::OrderClient, ClaimRequest, ClaimResponse},
};
use bazaar_runtime::{context, failpoint, time::now_micros};
use bazaar_store::Db;
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::{
    domain::{self, CarrierDecision, Shipment, ShipmentStatus},
    store::shipments,
};

/// The failpoint between a granted claim and recording it.
pub const AFTER_CLAIM: &str = "shipping.after_claim";

/// How the worker paces itself.
#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    /// How often it looks for due shipments when the last look found none.
    pub poll: Duration,
    /// How long a lease lasts: longer than a claim call plus the writes after it, so a live
    /// worker never loses one; a dead worker's shipments wait this long.
    pub lease: Duration,
    /// The deadline of one `ClaimForShipment` call.
    pub claim_timeout: Duration,
    /// Shipments leased at once.
    pub batch: u16,
    /// Shipments of a batch worked on concurrently.
    pub concurrency: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            poll: Duration::from_millis(200),
            lease: Duration::from_secs(30),
            claim_timeout: Duration::from_secs(3),
            batch: 16,
            concurrency: 8,
        }
    }
}

/// The worker of one shipping instance.
#[derive(Debug, Clone)]
pub struct Worker {
    db: Db,
    bus: Bus,
    order: ServiceChannels,
    instance_id: String,
    config: WorkerConfig,
}

/// What became of one leased shipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Dispatched,
    Failed,
    NotClaimed,
    Retry,
    LeaseLost,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Dispatched => "dispatched",
            Outcome::Failed => "failed",
            Outcome::NotClaimed => "not_claimed",
            Outcome::Retry => "retry",
            Outcome::LeaseLost => "lease_lost",
        }
    }
}

impl Worker {
    /// A worker on `db` that claims orders through `order` and wakes `bus` after publishing.
    pub fn new(
        db: Db,
        bus: Bus,
        order: ServiceChannels,
        instance_id: String,
        config: WorkerConfig,
    ) -> Worker {
        Worker {
            db,
            bus,
            order,
            instance_id,
            config,
        }
    }

    /// Works until `stop` is cancelled. Database errors are logged and retried: a worker
    /// never ends the service.
    pub async fn run(self, stop: CancellationToken) -> anyhow::Result<()> {
        match shipments::release_leases_of(&self.db, &self.instance_id, now_micros()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                shipments = n,
                "Took back the shipments an earlier run of this instance held."
            ),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "Could not release old leases."),
        }
        tracing::debug!(instance_id = %self.instance_id, "Shipping worker started.");
        loop {
            if stop.is_cancelled() {
                break;
            }
            let found = match self.run_once().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "Shipping worker pass failed.");
                    0
                }
            };
            // A full batch suggests more are due: look again at once.
            if found >= usize::from(self.config.batch) {
                continue;
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(self.config.poll) => {}
            }
        }
        Ok(())
    }

    /// Leases the due shipments and works on them; returns how many were leased.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        // A fresh lease token per pass: it fences this pass's writes even against another
        // pass of the same instance (or a restarted instance with the same id).
        let token = format!(
            "{}/{}",
            self.instance_id,
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let now = now_micros();
        let lease = i64::try_from(self.config.lease.as_micros()).unwrap_or(i64::MAX);
        let leased = shipments::lease_due(
            &self.db,
            &token,
            now,
            now.saturating_add(lease),
            self.config.batch,
        )
        .await?;
        let n = leased.len();
        futures::stream::iter(leased)
            .for_each_concurrent(self.config.concurrency, |s| {
                let token = token.as_str();
                async move {
                    let order_id = s.order_id.to_string();
                    let ctx = trace_context(&s);
                    let span = tracing::info_span!("shipment", order_id = %order_id, attempt = s.attempts);
                    let outcome = context::scope(ctx, self.process(&s, token).instrument(span))
                        .await
                        .unwrap_or_else(|e| {
                            tracing::warn!(order_id = %order_id, error = %format!("{e:#}"), "Shipment step failed; its lease will expire and it is tried again.");
                            Outcome::LeaseLost
                        });
                    metrics::counter!("bazaar_shipping_attempts_total", "outcome" => outcome.as_str())
                        .increment(1);
                }
            })
            .await;
        Ok(n)
    }

    async fn process(&self, s: &Shipment, token: &str) -> anyhow::Result<Outcome> {
        let claim = self.claim(s).await;
        match claim {
            Err(status) => {
                let error = format!(
                    "ClaimForShipment: {:?}: {}",
                    status.code(),
                    status.message()
                );
                self.retry_later(s, token, &error).await
            }
            Ok(ClaimResponse {
                claimed: false,
                order_status,
            }) => {
                let reason = if order_status.is_empty() {
                    "order_refused_claim".to_owned()
                } else {
                    format!("order_{order_status}")
                };
                let mut tx = self.db.begin().await?;
                let done = shipments::finish(
                    &mut tx,
                    &s.order_id,
                    token,
                    ShipmentStatus::NotClaimed,
                    None,
                    Some(&reason),
                    now_micros(),
                )
                .await?;
                tx.commit().await?;
                if done {
                    tracing::info!(order_id = %s.order_id, order_status = %order_status, "Order refused the claim; not shipping it.");
                    Ok(Outcome::NotClaimed)
                } else {
                    Ok(Outcome::LeaseLost)
                }
            }
            Ok(ClaimResponse { claimed: true, .. }) => {
                if let Err(e) = failpoint::hit_async(AFTER_CLAIM).await {
                    return self.retry_later(s, token, &e.to_string()).await;
                }
                if !shipments::mark_claimed(&self.db, &s.order_id, token, now_micros()).await? {
                    return Ok(Outcome::LeaseLost);
                }
                let decision = domain::book(&s.postal_code, &mut rand::thread_rng());
                self.record(s, token, decision).await
            }
        }
    }

    async fn claim(&self, s: &Shipment) -> Result<ClaimResponse, tonic::Status> {
        let msg = ClaimRequest {
            order_id: s.order_id.to_string(),
            shipment_id: s.id.to_string(),
        };
        let timeout = self.config.claim_timeout;
        self.order
            .call(|channel| async move {
                OrderClient::new(channel)
                    .claim_for_shipment(grpc::request(msg, timeout))
                    .await
                    .map(tonic::Response::into_inner)
            })
            .await
    }

    /// The carrier's answer, the status change and its event, in one transaction.
    async fn record(
        &self,
        s: &Shipment,
        token: &str,
        decision: CarrierDecision,
    ) -> anyhow::Result<Outcome> {
        let mut tx = self.db.begin().await?;
        let now = now_micros();
        let outcome = match &decision {
            CarrierDecision::Dispatched { tracking_number } => {
                if !shipments::finish(
                    &mut tx,
                    &s.order_id,
                    token,
                    ShipmentStatus::Dispatched,
                    Some(tracking_number),
                    None,
                    now,
                )
                .await?
                {
                    return Ok(Outcome::LeaseLost);
                }
                bazaar_messaging::publish(
                    &mut tx,
                    &ShipmentDispatchedV1 {
                        order_id: s.order_id.to_string(),
                        user_id: s.user_id.clone(),
                        shipment_id: s.id.to_string(),
                        tracking_number: tracking_number.clone(),
                    },
                )
                .await?;
                Outcome::Dispatched
            }
            CarrierDecision::Rejected { reason } => {
                if !shipments::finish(
                    &mut tx,
                    &s.order_id,
                    token,
                    ShipmentStatus::Failed,
                    None,
                    Some(reason),
                    now,
                )
                .await?
                {
                    return Ok(Outcome::LeaseLost);
                }
                bazaar_messaging::publish(
                    &mut tx,
                    &ShipmentFailedV1 {
                        order_id: s.order_id.to_string(),
                        user_id: s.user_id.clone(),
                        shipment_id: s.id.to_string(),
                        reason: (*reason).to_owned(),
                    },
                )
                .await?;
                Outcome::Failed
            }
        };
        tx.commit().await?;
        self.bus.notify();
        match &decision {
            CarrierDecision::Dispatched { tracking_number } => {
                tracing::info!(order_id = %s.order_id, shipment_id = %s.id, tracking_number = %tracking_number, "Shipment dispatched.");
            }
            CarrierDecision::Rejected { reason } => {
                tracing::info!(order_id = %s.order_id, shipment_id = %s.id, reason = %reason, "Carrier refused the shipment.");
            }
        }
        Ok(outcome)
    }

    async fn retry_later(&self, s: &Shipment, token: &str, error: &str) -> anyhow::Result<Outcome> {
        let attempts = u32::try_from(s.attempts).unwrap_or(u32::MAX);
        let delay = domain::retry_delay(attempts, &mut rand::thread_rng());
        let now = now_micros();
        let next = now.saturating_add(i64::try_from(delay.as_micros()).unwrap_or(i64::MAX));
        let done = shipments::reschedule(&self.db, &s.order_id, token, next, error, now).await?;
        tracing::warn!(order_id = %s.order_id, attempts, retry_in_ms = delay.as_millis(), error, "Claim failed; trying again later.");
        Ok(if done {
            Outcome::Retry
        } else {
            Outcome::LeaseLost
        })
    }
}

/// The trace of the confirmation that created the shipment (or a new one).
fn trace_context(s: &Shipment) -> context::RequestContext {
    let mut headers = http::HeaderMap::new();
    if let Some(v) = s
        .traceparent
        .as_deref()
        .and_then(|t| http::HeaderValue::from_str(t).ok())
    {
        headers.insert(context::TRACEPARENT, v);
    }
    context::RequestContext::from_headers(&headers, "shipping/worker")
}
