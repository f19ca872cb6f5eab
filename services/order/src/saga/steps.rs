//! The steps of the order saga: one remote call each (no transaction open while it runs),
//! then one transaction that records the outcome with the claim's lease.

use std::time::Duration;

use anyhow::Context as _;
use bazaar_contracts::events::{
    OrderCancelledV1, OrderConfirmedV1, OrderPaymentPendingV1, OrderRejectedV1,
};
use bazaar_proto::{
    inventory::{Line, ReservationStatus},
    payment::{ChargeRequest, PaymentStatus as PayStatus},
};
use bazaar_runtime::{context, failpoint, time::now_micros};
use bazaar_store::Tx;
use rand::Rng;

use super::{count_outcome, Worker};
use crate::{
    clients::{describe, is_provider_unavailable},
    domain::{backoff, Order, OrderStatus, PaymentStatus, SagaStatus, StatusReason, Step},
    store::{
        orders::{self, Guard},
        sagas::{self, Claimed, Update},
    },
};

/// What to write to the saga log with an outcome.
struct Note {
    outcome: &'static str,
    detail: Option<String>,
}

fn note(outcome: &'static str, detail: impl Into<Option<String>>) -> Note {
    Note {
        outcome,
        detail: detail.into(),
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl Worker {
    /// Runs the step of a claimed saga in the trace the order was placed in.
    pub(crate) async fn run_claimed(&self, c: Claimed) {
        let mut headers = http::HeaderMap::new();
        if let Some(tp) = c
            .traceparent
            .as_deref()
            .and_then(|t| http::HeaderValue::from_str(t).ok())
        {
            headers.insert(context::TRACEPARENT, tp);
        }
        let ctx = context::RequestContext::from_headers(&headers, &format!("/saga/{}", c.step));
        let span = tracing::info_span!("saga", order_id = %c.order_id, step = %c.step);
        let result =
            context::scope(ctx, tracing::Instrument::instrument(self.step(&c), span)).await;
        if let Err(e) = result {
            // The lease stays until it expires; the step then runs again (it is idempotent).
            tracing::warn!(order_id = %c.order_id, step = %c.step, error = %format!("{e:#}"), "A saga step could not be recorded.");
        }
    }

    async fn step(&self, c: &Claimed) -> anyhow::Result<()> {
        let order = match orders::get(&self.db, &c.order_id).await? {
            Some(o) => o,
            None => {
                return self
                    .simple(
                        c,
                        self.stuck(c, "the order does not exist"),
                        note("stuck", None),
                    )
                    .await
            }
        };
        if c.step.is_forward() {
            if order.cancel_requested {
                return self
                    .simple(
                        c,
                        self.next(c, Step::Compensate),
                        note("cancel_requested", None),
                    )
                    .await;
            }
            if order.status.is_final() {
                return self
                    .simple(
                        c,
                        self.finished(c, SagaStatus::Done),
                        note("skipped", format!("the order is already {}", order.status)),
                    )
                    .await;
            }
        }
        match c.step {
            Step::Reserve => self.reserve(c, &order).await,
            Step::Charge => self.charge(c, &order).await,
            Step::VerifyCharge => self.verify_charge(c, &order).await,
            Step::Confirm => self.confirm(c, &order).await,
            Step::RejectDeclined | Step::RejectUnavailable | Step::Compensate | Step::Abort => {
                self.compensate(c, &order).await
            }
        }
    }

    // ---- steps --------------------------------------------------------------------------

    async fn reserve(&self, c: &Claimed, order: &Order) -> anyhow::Result<()> {
        let lines = order
            .items
            .iter()
            .map(|l| Line {
                sku: l.sku.clone(),
                quantity: l.quantity,
            })
            .collect();
        let result = self.clients.reserve(&order.id, lines).await;
        if let Err(e) = failpoint::hit_async("order.saga.after_reserve").await {
            return self.failed(c, e.to_string()).await;
        }
        let reply = match result {
            Ok(r) => r,
            Err(s) => return self.failed(c, format!("reserve: {}", describe(&s))).await,
        };
        match ReservationStatus::try_from(reply.status) {
            Ok(ReservationStatus::Reserved) => {
                self.simple(c, self.next(c, Step::Charge), note("reserved", None))
                    .await
            }
            Ok(ReservationStatus::OutOfStock) => {
                let detail = format!("short: {}", reply.short_skus.join(", "));
                self.end(
                    c,
                    order,
                    OrderStatus::Rejected,
                    StatusReason::OutOfStock,
                    SagaStatus::Done,
                    None,
                    note("out_of_stock", detail),
                )
                .await
            }
            Ok(ReservationStatus::Released) => {
                self.simple(
                    c,
                    self.next(c, Step::Compensate),
                    note(
                        "released",
                        "inventory reports the order released".to_owned(),
                    ),
                )
                .await
            }
            other => {
                self.failed(
                    c,
                    format!("reserve answered an unexpected status {other:?}"),
                )
                .await
            }
        }
    }

    async fn charge(&self, c: &Claimed, order: &Order) -> anyhow::Result<()> {
        let now = now_micros();
        if c.deadline_us.is_some_and(|d| now >= d) {
            return self
                .simple(
                    c,
                    self.next(c, Step::RejectUnavailable),
                    note("payment_deadline_passed", None),
                )
                .await;
        }
        let result = self
            .clients
            .charge(ChargeRequest {
                order_id: order.id.clone(),
                amount_minor: order.total.amount_minor,
                currency: order.total.currency.clone(),
                card_token: order.card_token.clone(),
            })
            .await;
        if let Err(e) = failpoint::hit_async("order.saga.after_charge").await {
            // The charge may have happened: ask before charging again.
            return self.unknown_charge(c, e.to_string()).await;
        }
        match result {
            Ok(r) => match PayStatus::try_from(r.status) {
                Ok(PayStatus::Captured) => self.captured(c, order).await,
                Ok(PayStatus::Declined) => self.declined(c, order, r.decline_reason).await,
                other => {
                    self.unknown_charge(c, format!("charge answered {other:?}"))
                        .await
                }
            },
            Err(s) if is_provider_unavailable(&s) => self.provider_unavailable(c, order, &s).await,
            Err(s) => {
                self.unknown_charge(c, format!("charge: {}", describe(&s)))
                    .await
            }
        }
    }

    async fn verify_charge(&self, c: &Claimed, order: &Order) -> anyhow::Result<()> {
        let view = match self.clients.get_payment(&order.id).await {
            Ok(v) => v,
            Err(s) => {
                return self
                    .failed(c, format!("get payment: {}", describe(&s)))
                    .await
            }
        };
        match PayStatus::try_from(view.status) {
            Ok(PayStatus::Captured) => self.captured(c, order).await,
            Ok(PayStatus::Declined) => self.declined(c, order, String::new()).await,
            Ok(PayStatus::None) => {
                // Nothing was charged: charge (again), keeping the attempt count.
                let now = now_micros();
                let update = Update {
                    step: Step::Charge,
                    status: SagaStatus::Running,
                    attempts: c.attempts,
                    next_attempt_us: now,
                    deadline_us: c.deadline_us,
                    last_error: None,
                };
                self.simple(c, update, note("not_charged", None)).await
            }
            Ok(PayStatus::Pending) => {
                // Neither payment nor the provider knows an outcome: the charge never reached
                // the provider, or is still on its way. Charging again is safe — payment and
                // the provider both deduplicate by the order's key, and payment asks the
                // provider before it sends anything — so go back to `charge` after the
                // backoff instead of waiting here for an outcome that may never come.
                let mut update = self.failure(c, "the payment's outcome is not known yet");
                if update.status == SagaStatus::Running {
                    update.step = Step::Charge;
                }
                self.simple(c, update, note("charge_unknown", None)).await
            }
            other => {
                self.failed(
                    c,
                    format!("get payment answered an unexpected status {other:?}"),
                )
                .await
            }
        }
    }

    async fn confirm(&self, c: &Claimed, order: &Order) -> anyhow::Result<()> {
        if let Err(e) = failpoint::hit_async("order.saga.before_confirm").await {
            return self.failed(c, e.to_string()).await;
        }
        let now = now_micros();
        let mut tx = self.db.begin().await.context("begin confirm")?;
        let moved = orders::transition(
            &mut tx,
            &order.id,
            OrderStatus::Confirmed,
            None,
            Guard::NotCancelling,
            now,
        )
        .await?;
        let (update, n) = if moved {
            orders::raise_payment_status(&mut tx, &order.id, PaymentStatus::Captured, now).await?;
            bazaar_messaging::publish(
                &mut tx,
                &OrderConfirmedV1 {
                    order_id: order.id.clone(),
                    user_id: order.user_id.clone(),
                    items: order.event_lines(),
                    total: order.event_total(),
                    shipping_address: order.event_address(),
                },
            )
            .await
            .context("publish order confirmed")?;
            (self.finished(c, SagaStatus::Done), note("confirmed", None))
        } else if orders::cancel_requested(&mut tx, &order.id).await? {
            (
                self.next(c, Step::Compensate),
                note("cancel_requested", None),
            )
        } else {
            (
                self.finished(c, SagaStatus::Done),
                note("skipped", "the order can no longer be confirmed".to_owned()),
            )
        };
        self.commit(tx, c, &update, n, now, moved).await?;
        if moved {
            count_outcome("confirmed");
            tracing::info!(order_id = %order.id, "Order confirmed.");
        }
        Ok(())
    }

    /// The compensating steps: give the stock back (and refund), then end the order.
    async fn compensate(&self, c: &Claimed, order: &Order) -> anyhow::Result<()> {
        let (reason, to, saga_status) = match c.step {
            Step::RejectDeclined => (
                StatusReason::PaymentDeclined,
                OrderStatus::Rejected,
                SagaStatus::Done,
            ),
            Step::RejectUnavailable => (
                StatusReason::PaymentUnavailable,
                OrderStatus::Rejected,
                SagaStatus::Done,
            ),
            Step::Abort => (
                StatusReason::OperatorAborted,
                OrderStatus::Rejected,
                SagaStatus::Aborted,
            ),
            _ => (
                StatusReason::CustomerCancelled,
                OrderStatus::Cancelled,
                SagaStatus::Done,
            ),
        };
        let released = match self.clients.release(&order.id, reason.as_str()).await {
            Ok(r) => ReservationStatus::try_from(r.status).map_or_else(
                |_| format!("status {}", r.status),
                |s| s.as_str_name().to_owned(),
            ),
            Err(s) => return self.failed(c, format!("release: {}", describe(&s))).await,
        };
        // A declined card captured nothing. Every other way out may follow a capture the saga
        // never heard of (a charge that timed out, a cancel racing a charge): refund, which
        // is idempotent and harmless when nothing was captured.
        let refunded = if c.step == Step::RejectDeclined {
            None
        } else {
            match self.clients.refund(&order.id, reason.as_str()).await {
                Ok(r) => Some(PayStatus::try_from(r.status).unwrap_or(PayStatus::Unspecified)),
                Err(s) => return self.failed(c, format!("refund: {}", describe(&s))).await,
            }
        };
        let detail = match refunded {
            Some(p) => format!("release: {released}; refund: {}", p.as_str_name()),
            None => format!("release: {released}"),
        };
        self.end(
            c,
            order,
            to,
            reason,
            saga_status,
            refunded,
            note("compensated", detail),
        )
        .await
    }

    // ---- outcomes -----------------------------------------------------------------------

    async fn captured(&self, c: &Claimed, order: &Order) -> anyhow::Result<()> {
        let update = self.next(c, Step::Confirm);
        self.with_payment(
            c,
            order,
            PaymentStatus::Captured,
            update,
            note("captured", None),
        )
        .await
    }

    async fn declined(&self, c: &Claimed, order: &Order, reason: String) -> anyhow::Result<()> {
        let detail = (!reason.is_empty()).then_some(reason);
        let update = self.next(c, Step::RejectDeclined);
        self.with_payment(
            c,
            order,
            PaymentStatus::Declined,
            update,
            note("declined", detail),
        )
        .await
    }

    /// Records `update` together with what the saga learnt of the payment.
    async fn with_payment(
        &self,
        c: &Claimed,
        order: &Order,
        status: PaymentStatus,
        update: Update,
        n: Note,
    ) -> anyhow::Result<()> {
        let now = now_micros();
        let mut tx = self.db.begin().await.context("begin payment outcome")?;
        orders::raise_payment_status(&mut tx, &order.id, status, now).await?;
        self.commit(tx, c, &update, n, now, false).await?;
        Ok(())
    }

    /// A charge whose outcome is unknown: the next attempt asks payment first.
    async fn unknown_charge(&self, c: &Claimed, error: String) -> anyhow::Result<()> {
        let mut update = self.failure(c, &error);
        if update.status == SagaStatus::Running {
            update.step = Step::VerifyCharge;
        }
        let outcome = if update.status == SagaStatus::Stuck {
            "stuck"
        } else {
            "charge_unknown"
        };
        self.simple(c, update, note(outcome, error)).await
    }

    /// Payment answered that the provider is unavailable (nothing was charged): the order
    /// waits as `payment_pending` and the charge is retried until the deadline.
    async fn provider_unavailable(
        &self,
        c: &Claimed,
        order: &Order,
        status: &tonic::Status,
    ) -> anyhow::Result<()> {
        let now = now_micros();
        let ppd = micros(self.payment_pending_deadline);
        let deadline = c.deadline_us.unwrap_or_else(|| now.saturating_add(ppd));
        if now >= deadline {
            return self
                .simple(
                    c,
                    self.next(c, Step::RejectUnavailable),
                    note("payment_deadline_passed", describe(status)),
                )
                .await;
        }
        // Retry sooner at first, then less often: a quarter of the time waited so far,
        // within the backoff bounds, never past the deadline.
        let waited = now.saturating_sub(deadline.saturating_sub(ppd)).max(0);
        let lo = micros(self.config.base_backoff);
        let hi = micros(self.config.max_backoff).max(lo);
        let delay = (waited / 4).clamp(lo, hi);
        let jitter = rand::thread_rng().gen_range(0.5..=1.0);
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let delay = ((delay as f64) * jitter) as i64;
        let update = Update {
            step: Step::Charge,
            status: SagaStatus::Running,
            attempts: c.attempts,
            next_attempt_us: now.saturating_add(delay).min(deadline),
            deadline_us: Some(deadline),
            last_error: Some(describe(status)),
        };
        if c.deadline_us.is_some() {
            return self
                .simple(c, update, note("payment_unavailable", describe(status)))
                .await;
        }
        let mut tx = self.db.begin().await.context("begin payment pending")?;
        let moved = orders::transition(
            &mut tx,
            &order.id,
            OrderStatus::PaymentPending,
            None,
            Guard::NotCancelling,
            now,
        )
        .await?;
        if moved {
            orders::raise_payment_status(&mut tx, &order.id, PaymentStatus::Pending, now).await?;
            bazaar_messaging::publish(
                &mut tx,
                &OrderPaymentPendingV1 {
                    order_id: order.id.clone(),
                    user_id: order.user_id.clone(),
                },
            )
            .await
            .context("publish order payment pending")?;
        }
        let n = note(
            "payment_pending",
            format!("{}; retrying until the deadline", describe(status)),
        );
        self.commit(tx, c, &update, n, now, moved).await?;
        if moved {
            count_outcome("payment_pending");
            tracing::info!(order_id = %order.id, "Payment provider unavailable; order is payment_pending.");
        }
        Ok(())
    }

    /// Ends the order in `to(reason)` and the saga in `saga_status`, publishing the event.
    #[allow(clippy::too_many_arguments)]
    async fn end(
        &self,
        c: &Claimed,
        order: &Order,
        to: OrderStatus,
        reason: StatusReason,
        saga_status: SagaStatus,
        refunded: Option<PayStatus>,
        n: Note,
    ) -> anyhow::Result<()> {
        let now = now_micros();
        let mut tx = self.db.begin().await.context("begin end of saga")?;
        let moved =
            orders::transition(&mut tx, &order.id, to, Some(reason), Guard::None, now).await?;
        match refunded {
            Some(PayStatus::Refunded) => {
                orders::raise_payment_status(&mut tx, &order.id, PaymentStatus::Refunded, now)
                    .await?;
            }
            Some(PayStatus::None) => {
                orders::replace_payment_status(
                    &mut tx,
                    &order.id,
                    PaymentStatus::Pending,
                    PaymentStatus::None,
                    now,
                )
                .await?;
            }
            _ => {}
        }
        if c.step == Step::RejectDeclined {
            orders::raise_payment_status(&mut tx, &order.id, PaymentStatus::Declined, now).await?;
        }
        if moved {
            let (order_id, user_id, reason) = (
                order.id.clone(),
                order.user_id.clone(),
                reason.as_str().to_owned(),
            );
            if to == OrderStatus::Cancelled {
                bazaar_messaging::publish(
                    &mut tx,
                    &OrderCancelledV1 {
                        order_id,
                        user_id,
                        reason,
                    },
                )
                .await
                .context("publish order cancelled")?;
            } else {
                bazaar_messaging::publish(
                    &mut tx,
                    &OrderRejectedV1 {
                        order_id,
                        user_id,
                        reason,
                    },
                )
                .await
                .context("publish order rejected")?;
            }
        }
        let update = self.finished(c, saga_status);
        if self.commit(tx, c, &update, n, now, moved).await? && moved {
            count_outcome(if to == OrderStatus::Cancelled {
                "cancelled"
            } else {
                "rejected"
            });
            tracing::info!(order_id = %order.id, status = %to, %reason, "Order ended.");
        }
        Ok(())
    }

    // ---- recording ----------------------------------------------------------------------

    /// The saga moves to `step`, due now, attempts from zero.
    fn next(&self, c: &Claimed, step: Step) -> Update {
        Update {
            step,
            status: SagaStatus::Running,
            attempts: 0,
            next_attempt_us: now_micros(),
            deadline_us: c.deadline_us,
            last_error: None,
        }
    }

    /// The saga is over.
    fn finished(&self, c: &Claimed, status: SagaStatus) -> Update {
        Update {
            step: c.step,
            status,
            attempts: c.attempts,
            next_attempt_us: now_micros(),
            deadline_us: c.deadline_us,
            last_error: None,
        }
    }

    fn stuck(&self, c: &Claimed, error: &str) -> Update {
        Update {
            step: c.step,
            status: SagaStatus::Stuck,
            attempts: c.attempts.saturating_add(1),
            next_attempt_us: now_micros(),
            deadline_us: c.deadline_us,
            last_error: Some(error.to_owned()),
        }
    }

    /// The same step again after a jittered backoff, or `stuck` after the last attempt.
    fn failure(&self, c: &Claimed, error: &str) -> Update {
        let attempts = c.attempts.saturating_add(1);
        if attempts >= self.config.max_attempts_per_step {
            return self.stuck(c, error);
        }
        let wait = backoff(
            attempts,
            self.config.base_backoff,
            self.config.max_backoff,
            rand::thread_rng().gen_range(0.0..1.0),
        );
        Update {
            step: c.step,
            status: SagaStatus::Running,
            attempts,
            next_attempt_us: now_micros().saturating_add(micros(wait)),
            deadline_us: c.deadline_us,
            last_error: Some(error.to_owned()),
        }
    }

    /// A transient failure of the step: retried later, or parked as `stuck`.
    async fn failed(&self, c: &Claimed, error: String) -> anyhow::Result<()> {
        let update = self.failure(c, &error);
        let outcome = if update.status == SagaStatus::Stuck {
            tracing::warn!(order_id = %c.order_id, step = %c.step, error = %error, "Saga is stuck.");
            "stuck"
        } else {
            tracing::debug!(order_id = %c.order_id, step = %c.step, error = %error, "Saga step failed; will retry.");
            "failed"
        };
        self.simple(c, update, note(outcome, error)).await
    }

    /// Records `update` with nothing else to change.
    async fn simple(&self, c: &Claimed, update: Update, n: Note) -> anyhow::Result<()> {
        let now = now_micros();
        let tx = self.db.begin().await.context("begin saga record")?;
        self.commit(tx, c, &update, n, now, false).await?;
        Ok(())
    }

    /// Records `update` in `tx` with the claim's lease and commits; if the claim no longer
    /// holds the saga at its step, rolls back everything `tx` did, logs the discarded outcome
    /// and lets the lease go. Returns whether the outcome was recorded.
    async fn commit(
        &self,
        mut tx: Tx,
        c: &Claimed,
        update: &Update,
        n: Note,
        now: i64,
        order_changed: bool,
    ) -> anyhow::Result<bool> {
        if !sagas::record(&mut tx, c, update, now).await? {
            tx.rollback()
                .await
                .context("roll back a discarded outcome")?;
            self.discard(c, &n).await?;
            return Ok(false);
        }
        sagas::log(
            &mut tx,
            &c.order_id,
            c.step,
            n.outcome,
            n.detail.as_deref(),
            now,
        )
        .await?;
        tx.commit().await.context("commit saga step")?;
        if order_changed {
            self.bus.notify();
            self.changed.changed(&c.order_id);
        }
        if update.status == SagaStatus::Running && update.next_attempt_us <= now_micros() {
            self.wake.notify_one();
        }
        Ok(true)
    }

    /// The saga moved on while the step ran (a cancel, an operator): its outcome is dropped
    /// (the compensation undoes whatever the call did) and the lease released.
    async fn discard(&self, c: &Claimed, n: &Note) -> anyhow::Result<()> {
        let now = now_micros();
        let mut tx = self.db.begin().await.context("begin discard")?;
        let detail = format!(
            "the saga moved on before this outcome was recorded{}",
            n.detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        );
        sagas::log(
            &mut tx,
            &c.order_id,
            c.step,
            "discarded",
            Some(&detail),
            now,
        )
        .await?;
        tx.commit().await.context("commit discard")?;
        sagas::release(&self.db, c, now).await?;
        tracing::info!(order_id = %c.order_id, step = %c.step, outcome = n.outcome, "Discarded the outcome of a step the saga has moved past.");
        self.wake.notify_one();
        Ok(())
    }
}
