//! The payment rules: charge once per order, query before retry, refund once; every call to
//! the processor through the circuit breaker, and never inside a database transaction (on
//! SQLite the transaction would hold the only write connection for the whole call).

use std::{sync::Arc, time::Instant};

use anyhow::Context as _;
use bazaar_contracts::events::{MoneyV1, PaymentCapturedV1, PaymentDeclinedV1, PaymentRefundedV1};
use bazaar_messaging::Bus;
use bazaar_resilience::CircuitBreaker;
use bazaar_runtime::time::now_micros;
use bazaar_store::Db;

use crate::{
    domain::{ChargeCommand, OrderId, PaymentStatus, RefundReason},
    psp::{ChargeAnswer, PspCharge, PspClient, PspError},
    store::payments::{self, Payment, Settlement},
};

/// The decline reason recorded when the processor refuses the card token itself.
pub const INVALID_CARD: &str = "invalid_card";

/// The name of the failpoint between the processor's answer and its recording.
pub const FAILPOINT_AFTER_PSP: &str = "payment.charge.after_psp";

/// The name of the failpoint that, set to `error`, makes every captured charge be captured a
/// second time at the processor under another idempotency key: a deliberate double-charge bug,
/// visible only at the processor, that proves the consistency checker catches one.
pub const FAILPOINT_DOUBLE_CHARGE: &str = "payment.charge.double";

/// Why a payment operation did not complete.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The order already has a payment that does not match the request.
    #[error("{0}")]
    Conflict(&'static str),
    /// The processor cannot be reached, failed, or the breaker is open: nothing was charged
    /// in this call (a pending payment may still settle later).
    #[error("payment provider unavailable")]
    Unavailable,
    /// The breaker in front of the processor is open: the processor was not called.
    #[error("payment provider unavailable")]
    BreakerOpen,
    /// The processor did not answer in time: the outcome is unknown, ask again (GetPayment)
    /// before retrying.
    #[error("payment provider did not answer in time")]
    Timeout,
    /// A bug or an outage of this service.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// What a refund did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundOutcome {
    /// The payment's status afterwards (`None` when the order has no payment).
    pub status: PaymentStatus,
    /// What has been refunded in all.
    pub refunded_minor: i64,
}

/// The payment service's operations. Cheap to clone.
#[derive(Clone)]
pub struct Payments {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    psp: PspClient,
    breaker: CircuitBreaker,
    bus: Bus,
}

impl std::fmt::Debug for Payments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payments")
            .field("psp", &self.inner.psp)
            .field("breaker", &self.inner.breaker)
            .finish_non_exhaustive()
    }
}

impl Payments {
    /// Payments over `db`, charging through `psp` behind `breaker`, announcing outcomes on
    /// `bus`.
    pub fn new(db: Db, psp: PspClient, breaker: CircuitBreaker, bus: Bus) -> Self {
        Payments {
            inner: Arc::new(Inner {
                db,
                psp,
                breaker,
                bus,
            }),
        }
    }

    /// The payment database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The breaker in front of the processor.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.inner.breaker
    }

    /// Charges for an order, at most once whatever the retries.
    ///
    /// A settled payment is returned as it is, without calling the processor. A pending one
    /// (an earlier attempt timed out or failed) is first looked up at the processor (query
    /// before retry) and settled from its answer. Otherwise the attempt is counted and the
    /// charge is sent with the order's fixed idempotency key.
    #[tracing::instrument(skip(self, cmd), fields(order_id = %cmd.order_id))]
    pub async fn charge(&self, cmd: ChargeCommand) -> Result<Payment, PaymentError> {
        let result = self.charge_inner(&cmd).await;
        let outcome = match &result {
            Ok(p) => p.status.as_str(),
            Err(PaymentError::Timeout) => "timeout",
            Err(PaymentError::BreakerOpen) => "breaker_open",
            Err(PaymentError::Unavailable) => "unavailable",
            Err(PaymentError::Conflict(_)) => "refused",
            Err(PaymentError::Unexpected(_)) => "error",
        };
        metrics::counter!("bazaar_payment_charges_total", "outcome" => outcome).increment(1);
        result
    }

    async fn charge_inner(&self, cmd: &ChargeCommand) -> Result<Payment, PaymentError> {
        let db = &self.inner.db;
        if let Some(existing) = payments::get(db, &cmd.order_id).await? {
            if existing.amount_minor != cmd.amount_minor || existing.currency != cmd.currency {
                return Err(PaymentError::Conflict(
                    "the order already has a payment of another amount",
                ));
            }
            match existing.status {
                PaymentStatus::Pending => {
                    if let Some(settled) = self.query_before_retry(&existing).await? {
                        return Ok(settled);
                    }
                }
                _ => return Ok(existing),
            }
        }
        let permit = self.acquire()?;
        // Committed before the call: a crash during it leaves a pending payment that the
        // next Charge or GetPayment settles by asking the processor.
        let payment = payments::begin_attempt(db, cmd, now_micros()).await?;
        if payment.status != PaymentStatus::Pending {
            // Settled by a concurrent call since we looked.
            return Ok(payment);
        }
        let started = Instant::now();
        let answer = self
            .inner
            .psp
            .charge(
                &payment.psp_charge_key,
                payment.amount_minor,
                &payment.currency,
                &payment.card_token,
            )
            .await;
        match &answer {
            Err(e) if e.is_provider_failure() => permit.failure(),
            _ => permit.success(started.elapsed()),
        }
        let settlement = match answer {
            Ok(ChargeAnswer::Charge(charge)) => settlement_of(&charge)?,
            Ok(ChargeAnswer::InvalidCard) => Settlement::Declined {
                reason: INVALID_CARD.to_owned(),
                charge_id: None,
            },
            Err(e) => return Err(self.psp_failure(&payment.order_id, e)),
        };
        if matches!(settlement, Settlement::Captured { .. }) {
            self.double_charge_bug(&payment).await;
        }
        bazaar_runtime::failpoint::hit_async(FAILPOINT_AFTER_PSP)
            .await
            .map_err(|e| PaymentError::Unexpected(e.into()))?;
        self.settle(&payment, &settlement).await
    }

    /// The deliberate bug of [`FAILPOINT_DOUBLE_CHARGE`]: only when that failpoint is set to
    /// `error`, charges `payment` a second time under the key `<charge key>-dup` and ignores
    /// the answer (no breaker, no record, no event). Does nothing otherwise.
    async fn double_charge_bug(&self, payment: &Payment) {
        if bazaar_runtime::failpoint::hit_async(FAILPOINT_DOUBLE_CHARGE)
            .await
            .is_ok()
        {
            return;
        }
        let key = format!("{}-dup", payment.psp_charge_key);
        let answer = self
            .inner
            .psp
            .charge(
                &key,
                payment.amount_minor,
                &payment.currency,
                &payment.card_token,
            )
            .await;
        tracing::warn!(order_id = %payment.order_id, key = %key, ok = answer.is_ok(), "Failpoint payment.charge.double: charged the order a second time on purpose.");
    }

    /// Asks the processor about a pending payment's charge; settles and returns the payment
    /// if the processor knows the outcome, `None` if it never recorded the charge.
    async fn query_before_retry(&self, pending: &Payment) -> Result<Option<Payment>, PaymentError> {
        let permit = self.acquire()?;
        let started = Instant::now();
        let found = self.inner.psp.find_charge(&pending.psp_charge_key).await;
        match &found {
            Err(e) if e.is_provider_failure() => permit.failure(),
            _ => permit.success(started.elapsed()),
        }
        match found {
            Ok(Some(charge)) => {
                let settlement = settlement_of(&charge)?;
                tracing::info!(order_id = %pending.order_id, status = %charge.status, "The payment provider knew the outcome of a pending payment.");
                self.settle(pending, &settlement).await.map(Some)
            }
            Ok(None) => Ok(None),
            Err(e) => Err(self.psp_failure(&pending.order_id, e)),
        }
    }

    /// Records how the processor settled `payment` and publishes the outcome, in one
    /// transaction. If someone else settled it first, their outcome is returned.
    async fn settle(
        &self,
        payment: &Payment,
        settlement: &Settlement,
    ) -> Result<Payment, PaymentError> {
        let db = &self.inner.db;
        let mut tx = db.begin().await.context("begin settling a payment")?;
        let Some(settled) =
            payments::settle(&mut tx, &payment.order_id, settlement, now_micros()).await?
        else {
            drop(tx);
            return payments::get(db, &payment.order_id)
                .await?
                .context("a settled payment is gone")
                .map_err(PaymentError::from);
        };
        let order_id = settled.order_id.as_str().to_owned();
        match settlement {
            Settlement::Captured { amount_minor, .. } => {
                bazaar_messaging::publish(
                    &mut tx,
                    &PaymentCapturedV1 {
                        order_id,
                        amount: MoneyV1 {
                            amount_minor: *amount_minor,
                            currency: settled.currency.clone(),
                        },
                    },
                )
                .await
            }
            Settlement::Declined { reason, .. } => {
                bazaar_messaging::publish(
                    &mut tx,
                    &PaymentDeclinedV1 {
                        order_id,
                        reason: reason.clone(),
                    },
                )
                .await
            }
        }
        .context("publish the payment's outcome")?;
        tx.commit().await.context("commit the payment's outcome")?;
        self.inner.bus.notify();
        tracing::info!(order_id = %settled.order_id, status = settled.status.as_str(), attempts = settled.attempts, "Payment settled.");
        Ok(settled)
    }

    /// What is known of the order's payment: `None` if it has none. A pending payment is
    /// looked up at the processor and settled if the processor knows the outcome; if the
    /// processor cannot tell (down, breaker open, slow), the payment is returned as pending.
    #[tracing::instrument(skip(self), fields(order_id = %order_id))]
    pub async fn get(&self, order_id: &OrderId) -> Result<Option<Payment>, PaymentError> {
        let Some(payment) = payments::get(&self.inner.db, order_id).await? else {
            return Ok(None);
        };
        if payment.status != PaymentStatus::Pending {
            return Ok(Some(payment));
        }
        match self.query_before_retry(&payment).await {
            Ok(Some(settled)) => Ok(Some(settled)),
            Ok(None) => Ok(Some(payment)),
            Err(PaymentError::Unexpected(e)) => Err(PaymentError::Unexpected(e)),
            Err(e) => {
                tracing::debug!(order_id = %order_id, error = %e, "Could not ask the payment provider about a pending payment.");
                Ok(Some(payment))
            }
        }
    }

    /// Refunds what the order's payment captured, once. Already refunded: the same answer.
    /// No payment or declined: nothing to refund (status as is, 0 refunded). Pending: the
    /// processor is asked first; if it has no record of the charge, nothing was taken and
    /// the payment is returned as pending.
    #[tracing::instrument(skip(self, reason), fields(order_id = %order_id))]
    pub async fn refund(
        &self,
        order_id: &OrderId,
        reason: &RefundReason,
    ) -> Result<RefundOutcome, PaymentError> {
        let Some(mut payment) = payments::get(&self.inner.db, order_id).await? else {
            return Ok(RefundOutcome {
                status: PaymentStatus::None,
                refunded_minor: 0,
            });
        };
        if payment.status == PaymentStatus::Pending {
            if let Some(settled) = self.query_before_retry(&payment).await? {
                payment = settled;
            }
        }
        if payment.status != PaymentStatus::Captured {
            return Ok(RefundOutcome {
                status: payment.status,
                refunded_minor: payment.refunded_minor,
            });
        }
        let amount = payment.captured_minor - payment.refunded_minor;
        let permit = self.acquire()?;
        let started = Instant::now();
        let refunded = self
            .inner
            .psp
            .refund(&order_id.refund_key(), &payment.psp_charge_key, amount)
            .await;
        match &refunded {
            Err(e) if e.is_provider_failure() => permit.failure(),
            _ => permit.success(started.elapsed()),
        }
        let refund = refunded.map_err(|e| self.psp_failure(order_id, e))?;
        let total = payment.refunded_minor + refund.amount_minor;
        let db = &self.inner.db;
        let mut tx = db.begin().await.context("begin recording a refund")?;
        let Some(done) =
            payments::record_refund(&mut tx, order_id, total, reason.as_str(), now_micros())
                .await?
        else {
            // A concurrent refund recorded it first (the processor refunded once: same key).
            drop(tx);
            let p = payments::get(db, order_id)
                .await?
                .context("a refunded payment is gone")?;
            return Ok(RefundOutcome {
                status: p.status,
                refunded_minor: p.refunded_minor,
            });
        };
        bazaar_messaging::publish(
            &mut tx,
            &PaymentRefundedV1 {
                order_id: order_id.as_str().to_owned(),
                amount: MoneyV1 {
                    amount_minor: refund.amount_minor,
                    currency: done.currency.clone(),
                },
                reason: reason.as_str().to_owned(),
            },
        )
        .await
        .context("publish the refund")?;
        tx.commit().await.context("commit the refund")?;
        self.inner.bus.notify();
        metrics::counter!("bazaar_payment_refunds_total").increment(1);
        tracing::info!(order_id = %order_id, refunded_minor = total, reason = reason.as_str(), "Payment refunded.");
        Ok(RefundOutcome {
            status: done.status,
            refunded_minor: done.refunded_minor,
        })
    }

    /// A permit to call the processor, or [`PaymentError::BreakerOpen`].
    fn acquire(&self) -> Result<bazaar_resilience::Permit, PaymentError> {
        self.inner.breaker.try_acquire().map_err(|_| {
            tracing::debug!("Breaker open; not calling the payment provider.");
            PaymentError::BreakerOpen
        })
    }

    fn psp_failure(&self, order_id: &OrderId, e: PspError) -> PaymentError {
        match e {
            PspError::Timeout => {
                tracing::warn!(order_id = %order_id, "The payment provider did not answer in time.");
                PaymentError::Timeout
            }
            PspError::Unavailable(why) => {
                tracing::warn!(order_id = %order_id, error = %why, "The payment provider is unavailable.");
                PaymentError::Unavailable
            }
            PspError::Protocol(e) => {
                tracing::error!(order_id = %order_id, error = %format!("{e:#}"), "The payment provider answered unexpectedly.");
                PaymentError::Unavailable
            }
            PspError::Refused { status } => PaymentError::Unexpected(anyhow::anyhow!(
                "the payment provider refused a request for order {order_id} with {status}"
            )),
        }
    }
}

/// The settlement a processor's charge means.
fn settlement_of(charge: &PspCharge) -> Result<Settlement, PaymentError> {
    match charge.status.as_str() {
        "captured" => Ok(Settlement::Captured {
            amount_minor: charge.amount_minor,
            charge_id: charge.id.clone(),
        }),
        "declined" => Ok(Settlement::Declined {
            reason: charge
                .decline_code
                .clone()
                .unwrap_or_else(|| "declined".to_owned()),
            charge_id: Some(charge.id.clone()),
        }),
        other => Err(PaymentError::Unexpected(anyhow::anyhow!(
            "the payment provider reported an unknown charge status {other:?}"
        ))),
    }
}
