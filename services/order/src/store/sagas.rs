//! Saga state: the step each order's saga runs next, the lease of whoever runs it, and its log.

use anyhow::Context as _;
use bazaar_store::{Db, Tx};
use sqlx::any::AnyRow;

use super::{int, opt_int, opt_text, text};
use crate::domain::{SagaStatus, Step};

/// Inserts the saga of a new order: step `reserve`, due now.
pub async fn insert(
    tx: &mut Tx,
    order_id: &str,
    traceparent: Option<&str>,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO sagas (order_id, step, status, attempts, next_attempt_us, deadline_us, \
         lease_owner, lease_until_us, last_error, traceparent, created_us, updated_us) \
         VALUES ($1, $2, 'running', 0, $3, NULL, NULL, 0, NULL, $4, $3, $3)",
    )
    .bind(order_id)
    .bind(Step::Reserve.as_str())
    .bind(now)
    .bind(traceparent)
    .execute(&mut **tx)
    .await
    .context("insert saga")?;
    log(tx, order_id, Step::Reserve, "started", None, now).await
}

/// A saga claimed by this worker: run its step, then record the outcome with its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The order.
    pub order_id: String,
    /// The step to run.
    pub step: Step,
    /// Failed attempts of this step so far.
    pub attempts: u32,
    /// The payment-pending deadline, once the order is `payment_pending`.
    pub deadline_us: Option<i64>,
    /// The trace the order was placed in.
    pub traceparent: Option<String>,
    /// The fencing token of this claim.
    pub token: String,
}

/// Claims up to `limit` due sagas for `lease_us` under the fresh fencing token `token`.
///
/// Frees the leases held by earlier runs of this instance (their tokens start with
/// `<instance_id>:`): after a crash and restart the sagas it was running are due again at
/// once instead of after the lease time. A live process never shares its instance id, and
/// even if one did, outcomes are only recorded under the exact lease token, and every step is
/// idempotent by order id.
pub async fn release_leases_of(db: &Db, instance_id: &str, now: i64) -> anyhow::Result<u64> {
    let prefix = format!("{instance_id}:");
    let done = sqlx::query(
        "UPDATE sagas SET lease_owner = NULL, lease_until_us = 0, updated_us = $3 \
         WHERE lease_owner IS NOT NULL AND substr(lease_owner, 1, CAST($2 AS INTEGER)) = $1",
    )
    .bind(&prefix)
    .bind(i64::try_from(prefix.len()).unwrap_or(i64::MAX))
    .bind(now)
    .execute(db.writer())
    .await
    .context("release this instance's old leases")?;
    Ok(done.rows_affected())
}

/// One statement: the inner select picks due, unleased sagas and the outer update re-checks
/// both conditions, so on PostgreSQL a row another worker claimed meanwhile (it waits for
/// that row lock, then re-evaluates the condition) is skipped, and on SQLite the single
/// writer serialises claims. Two workers never hold the same saga.
pub async fn claim_due(
    db: &Db,
    token: &str,
    now: i64,
    lease_us: i64,
    limit: i64,
) -> anyhow::Result<Vec<Claimed>> {
    let rows = sqlx::query(
        "UPDATE sagas SET lease_owner = $1, lease_until_us = $2 \
         WHERE order_id IN (SELECT order_id FROM sagas WHERE status = 'running' \
             AND next_attempt_us <= $3 AND lease_until_us < $3 ORDER BY next_attempt_us LIMIT $4) \
         AND status = 'running' AND lease_until_us < $3 \
         RETURNING order_id, step, attempts, deadline_us, traceparent",
    )
    .bind(token)
    .bind(now.saturating_add(lease_us))
    .bind(now)
    .bind(limit)
    .fetch_all(db.writer())
    .await
    .context("claim due sagas")?;
    rows.iter()
        .map(|r| {
            let step = text(r, "step")?;
            Ok(Claimed {
                order_id: text(r, "order_id")?,
                step: Step::parse(&step).with_context(|| format!("unknown saga step {step:?}"))?,
                attempts: u32::try_from(int(r, "attempts")?).unwrap_or(u32::MAX),
                deadline_us: opt_int(r, "deadline_us")?,
                traceparent: opt_text(r, "traceparent")?,
                token: token.to_owned(),
            })
        })
        .collect()
}

/// The next state of a saga, recorded with its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The step to run next (or the last one, for a finished saga).
    pub step: Step,
    /// Running, done, stuck or aborted.
    pub status: SagaStatus,
    /// Failed attempts of `step`.
    pub attempts: u32,
    /// When `step` is due.
    pub next_attempt_us: i64,
    /// The payment-pending deadline.
    pub deadline_us: Option<i64>,
    /// The last failure, for operators.
    pub last_error: Option<String>,
}

/// Records `update` for the saga claimed as `claimed`, releasing the lease. Fenced: does
/// nothing and returns `false` unless this claim still holds the lease and the saga is still
/// at the step that was run (a cancel may have moved it to the compensation meanwhile).
pub async fn record(
    tx: &mut Tx,
    claimed: &Claimed,
    update: &Update,
    now: i64,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE sagas SET step = $4, status = $5, attempts = $6, next_attempt_us = $7, \
         deadline_us = $8, last_error = $9, lease_owner = NULL, lease_until_us = 0, updated_us = $10 \
         WHERE order_id = $1 AND lease_owner = $2 AND step = $3 AND status = 'running'",
    )
    .bind(&claimed.order_id)
    .bind(&claimed.token)
    .bind(claimed.step.as_str())
    .bind(update.step.as_str())
    .bind(update.status.as_str())
    .bind(i64::from(update.attempts))
    .bind(update.next_attempt_us)
    .bind(update.deadline_us)
    .bind(update.last_error.as_deref())
    .bind(now)
    .execute(&mut **tx)
    .await
    .context("record saga step")?;
    Ok(done.rows_affected() == 1)
}

/// Gives up the lease of `claimed` without recording an outcome (the saga moved on without
/// us), so the next step can run at once instead of after the lease.
pub async fn release(db: &Db, claimed: &Claimed, now: i64) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE sagas SET lease_owner = NULL, lease_until_us = 0, updated_us = $3 \
         WHERE order_id = $1 AND lease_owner = $2",
    )
    .bind(&claimed.order_id)
    .bind(&claimed.token)
    .bind(now)
    .execute(db.writer())
    .await
    .context("release saga lease")?;
    Ok(())
}

/// Hands the saga of `order_id` to a compensation step (`compensate` or `abort`), due now.
/// The lease is left alone: a worker still running the old step finds its step gone when
/// it records, discards its outcome and releases the lease.
pub async fn start_compensation(
    tx: &mut Tx,
    order_id: &str,
    step: Step,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE sagas SET step = $2, status = 'running', attempts = 0, next_attempt_us = $3, \
         last_error = NULL, updated_us = $3 WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(step.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await
    .context("start compensation")?;
    Ok(())
}

/// Appends to the saga's log.
pub async fn log(
    tx: &mut Tx,
    order_id: &str,
    step: Step,
    outcome: &str,
    detail: Option<&str>,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO saga_log (id, order_id, at_us, step, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(order_id)
    .bind(now)
    .bind(step.as_str())
    .bind(outcome)
    .bind(detail.map(|d| truncate(d, 1000)))
    .execute(&mut **tx)
    .await
    .context("insert saga log")?;
    Ok(())
}

/// At most `max` characters of `s`.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// A saga as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaRow {
    /// The order.
    pub order_id: String,
    /// The step it runs next (or ran last).
    pub step: Step,
    /// Its status.
    pub status: SagaStatus,
    /// Failed attempts of the step.
    pub attempts: i64,
    /// When the step is due.
    pub next_attempt_us: i64,
    /// The payment-pending deadline.
    pub deadline_us: Option<i64>,
    /// The last failure.
    pub last_error: Option<String>,
    /// Created.
    pub created_us: i64,
    /// Last changed.
    pub updated_us: i64,
    /// The claim token (`<instance id>:<uuid>`) of the worker running its step, if any.
    pub lease_owner: Option<String>,
    /// Until when that claim holds it.
    pub lease_until_us: i64,
    /// What it did, oldest first.
    pub log: Vec<LogEntry>,
}

impl SagaRow {
    /// The instance whose worker is running this saga's step at `now`, if one is.
    pub fn held_by(&self, now: i64) -> Option<&str> {
        let owner = self.lease_owner.as_deref()?;
        (self.lease_until_us > now).then(|| owner.rsplit_once(':').map_or(owner, |(id, _)| id))
    }
}

/// One line of a saga's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// When.
    pub at_us: i64,
    /// The step.
    pub step: String,
    /// What happened.
    pub outcome: String,
    /// More about it.
    pub detail: Option<String>,
}

const SAGA_COLUMNS: &str = "order_id, step, status, attempts, next_attempt_us, deadline_us, \
    last_error, created_us, updated_us, lease_owner, lease_until_us";

fn decode(r: &AnyRow) -> anyhow::Result<SagaRow> {
    let step = text(r, "step")?;
    let status = text(r, "status")?;
    Ok(SagaRow {
        order_id: text(r, "order_id")?,
        step: Step::parse(&step).with_context(|| format!("unknown saga step {step:?}"))?,
        status: SagaStatus::parse(&status)
            .with_context(|| format!("unknown saga status {status:?}"))?,
        attempts: int(r, "attempts")?,
        next_attempt_us: int(r, "next_attempt_us")?,
        deadline_us: opt_int(r, "deadline_us")?,
        last_error: opt_text(r, "last_error")?,
        created_us: int(r, "created_us")?,
        updated_us: int(r, "updated_us")?,
        lease_owner: opt_text(r, "lease_owner")?,
        lease_until_us: int(r, "lease_until_us")?,
        log: Vec::new(),
    })
}

/// Log entries kept per saga in the admin view (the newest).
const LOG_LIMIT: i64 = 100;

async fn load_log(db: &Db, saga: &mut SagaRow) -> anyhow::Result<()> {
    let rows = sqlx::query(
        "SELECT at_us, step, outcome, detail FROM saga_log WHERE order_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(&saga.order_id)
    .bind(LOG_LIMIT)
    .fetch_all(db.reader())
    .await
    .context("select saga log")?;
    let mut log = rows
        .iter()
        .map(|r| {
            Ok(LogEntry {
                at_us: int(r, "at_us")?,
                step: text(r, "step")?,
                outcome: text(r, "outcome")?,
                detail: opt_text(r, "detail")?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    log.reverse();
    saga.log = log;
    Ok(())
}

/// The saga of `order_id`, with its log.
pub async fn get(db: &Db, order_id: &str) -> anyhow::Result<Option<SagaRow>> {
    let sql = format!("SELECT {SAGA_COLUMNS} FROM sagas WHERE order_id = $1");
    let row = sqlx::query(&sql)
        .bind(order_id)
        .fetch_optional(db.reader())
        .await
        .context("select saga")?;
    let Some(row) = row else { return Ok(None) };
    let mut saga = decode(&row)?;
    load_log(db, &mut saga).await?;
    Ok(Some(saga))
}

/// One page of sagas (newest order first), optionally of one status, with their logs.
pub async fn list(
    db: &Db,
    status: Option<SagaStatus>,
    after: Option<&str>,
    limit: u8,
) -> anyhow::Result<(Vec<SagaRow>, bool)> {
    let mut clauses = Vec::new();
    let mut args: Vec<String> = Vec::new();
    if let Some(s) = status {
        args.push(s.as_str().to_owned());
        clauses.push(format!("status = ${}", args.len()));
    }
    if let Some(a) = after {
        args.push(a.to_owned());
        clauses.push(format!("order_id < ${}", args.len()));
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    let sql = format!(
        "SELECT {SAGA_COLUMNS} FROM sagas{filter} ORDER BY order_id DESC LIMIT ${}",
        args.len() + 1
    );
    let mut q = sqlx::query(&sql);
    for a in args {
        q = q.bind(a);
    }
    let rows = q
        .bind(i64::from(limit) + 1)
        .fetch_all(db.reader())
        .await
        .context("list sagas")?;
    let has_more = rows.len() > usize::from(limit);
    let mut out = Vec::new();
    for r in rows.iter().take(usize::from(limit)) {
        let mut saga = decode(r)?;
        load_log(db, &mut saga).await?;
        out.push(saga);
    }
    Ok((out, has_more))
}

/// What an operator's retry or abort decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorOutcome {
    /// Done.
    Accepted,
    /// Not in a state that allows it.
    Conflict,
    /// No such saga.
    NotFound,
}

/// An operator's retry: a `stuck` saga runs its step again, attempts from zero.
pub async fn retry(db: &Db, order_id: &str, now: i64) -> anyhow::Result<OperatorOutcome> {
    let mut tx = db.begin().await.context("begin saga retry")?;
    let row = sqlx::query(
        "UPDATE sagas SET status = 'running', attempts = 0, next_attempt_us = $2, last_error = NULL, \
         updated_us = $2 WHERE order_id = $1 AND status = 'stuck' RETURNING step",
    )
    .bind(order_id)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await
    .context("retry saga")?;
    let outcome = match row {
        Some(r) => {
            let step = text(&r, "step")?;
            let step = Step::parse(&step).with_context(|| format!("unknown saga step {step:?}"))?;
            log(&mut tx, order_id, step, "operator_retry", None, now).await?;
            OperatorOutcome::Accepted
        }
        None => exists_outcome(&mut tx, order_id).await?,
    };
    tx.commit().await.context("commit saga retry")?;
    Ok(outcome)
}

/// An operator's abort of a saga that has not finished, for an order not yet confirmed and
/// not being cancelled: the saga compensates and the order ends `rejected(operator_aborted)`.
/// The order's cancel flag is set in the same transaction, so shipping can never claim it
/// and a customer's cancel is answered 409.
pub async fn abort(db: &Db, order_id: &str, now: i64) -> anyhow::Result<OperatorOutcome> {
    let mut tx = db.begin().await.context("begin saga abort")?;
    let flagged = sqlx::query(
        "UPDATE orders SET cancel_requested = 1, updated_us = $2 WHERE id = $1 \
         AND cancel_requested = 0 AND shipment_claimed = 0 AND status IN ('pending', 'payment_pending') \
         AND EXISTS (SELECT 1 FROM sagas WHERE order_id = $1 AND status IN ('running', 'stuck'))",
    )
    .bind(order_id)
    .bind(now)
    .execute(&mut *tx)
    .await
    .context("flag aborted order")?;
    let outcome = if flagged.rows_affected() == 1 {
        start_compensation(&mut tx, order_id, Step::Abort, now).await?;
        log(&mut tx, order_id, Step::Abort, "operator_abort", None, now).await?;
        OperatorOutcome::Accepted
    } else {
        exists_outcome(&mut tx, order_id).await?
    };
    tx.commit().await.context("commit saga abort")?;
    Ok(outcome)
}

async fn exists_outcome(tx: &mut Tx, order_id: &str) -> anyhow::Result<OperatorOutcome> {
    let exists = sqlx::query("SELECT 1 FROM sagas WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(&mut **tx)
        .await
        .context("select saga")?
        .is_some();
    Ok(if exists {
        OperatorOutcome::Conflict
    } else {
        OperatorOutcome::NotFound
    })
}

/// How many sagas are in each status.
pub async fn counts(db: &Db) -> anyhow::Result<Vec<(SagaStatus, i64)>> {
    let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM sagas GROUP BY status")
        .fetch_all(db.reader())
        .await
        .context("count sagas")?;
    let mut out: Vec<(SagaStatus, i64)> = SagaStatus::ALL.iter().map(|s| (*s, 0)).collect();
    for r in rows {
        if let Some(s) = SagaStatus::parse(&text(&r, "status")?) {
            if let Some(slot) = out.iter_mut().find(|(x, _)| *x == s) {
                slot.1 = int(&r, "n")?;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(owner: Option<&str>, until: i64) -> SagaRow {
        SagaRow {
            order_id: "o".into(),
            step: Step::Reserve,
            status: SagaStatus::Running,
            attempts: 0,
            next_attempt_us: 0,
            deadline_us: None,
            last_error: None,
            created_us: 0,
            updated_us: 0,
            lease_owner: owner.map(str::to_owned),
            lease_until_us: until,
            log: Vec::new(),
        }
    }

    #[test]
    fn a_live_lease_names_the_instance_and_an_expired_or_released_one_nobody() {
        let token = "order-2:0190f3a4-0000-7000-8000-000000000000";
        assert_eq!(row(Some(token), 100).held_by(99), Some("order-2"));
        assert_eq!(row(Some(token), 100).held_by(100), None);
        assert_eq!(row(None, 0).held_by(0), None);
        assert_eq!(row(Some("no-uuid"), 100).held_by(0), Some("no-uuid"));
    }
}
