//! Idempotency keys of order placement.
//!
//! A key row is inserted before anything else happens (`order_id` NULL: in flight), gets the
//! order id in the transaction that creates the order, and is deleted again when the request
//! is refused, so a rejected request does not use up its key. `created_us` identifies the
//! request that holds the key: a request that finds an in-flight row older than the
//! takeover age (its request crashed) takes the key over by rewriting it, and whichever
//! request's `created_us` is no longer there has lost the key.

use anyhow::Context as _;
use bazaar_store::{Db, Tx};

use super::{int, opt_text, text};

/// What the key says about a new request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The key is this request's now; `claim_us` identifies the hold.
    Fresh {
        /// The hold's `created_us`.
        claim_us: i64,
    },
    /// The key's request created this order: answer with it.
    Replay {
        /// The order.
        order_id: String,
    },
    /// The key was used with another body.
    Reused,
    /// The key's first request is still running.
    InFlight,
}

/// Takes the key `(user_id, key)` for a request whose body hashes to `hash`, or says why not.
#[tracing::instrument(skip(db, hash))]
pub async fn begin(
    db: &Db,
    user_id: &str,
    key: &str,
    hash: &str,
    now: i64,
    takeover_after_us: i64,
) -> anyhow::Result<Begin> {
    // Two rounds: a row deleted between our insert and our read is simply inserted again.
    for _ in 0..2 {
        let mut tx = db.begin().await.context("begin idempotency key")?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (user_id, key, request_hash, order_id, created_us) \
             VALUES ($1, $2, $3, NULL, $4) ON CONFLICT (user_id, key) DO NOTHING",
        )
        .bind(user_id)
        .bind(key)
        .bind(hash)
        .bind(now)
        .execute(&mut *tx)
        .await
        .context("insert idempotency key")?;
        if inserted.rows_affected() == 1 {
            tx.commit().await.context("commit idempotency key")?;
            return Ok(Begin::Fresh { claim_us: now });
        }
        let row = sqlx::query(
            "SELECT request_hash, order_id, created_us FROM idempotency_keys \
             WHERE user_id = $1 AND key = $2",
        )
        .bind(user_id)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .context("select idempotency key")?;
        let Some(row) = row else {
            tx.commit().await.context("end idempotency key")?;
            continue;
        };
        let outcome = if text(&row, "request_hash")? != hash {
            Begin::Reused
        } else if let Some(order_id) = opt_text(&row, "order_id")? {
            Begin::Replay { order_id }
        } else {
            let held_since = int(&row, "created_us")?;
            if held_since < now.saturating_sub(takeover_after_us) {
                let taken = sqlx::query(
                    "UPDATE idempotency_keys SET created_us = $4 WHERE user_id = $1 AND key = $2 \
                     AND order_id IS NULL AND created_us = $3",
                )
                .bind(user_id)
                .bind(key)
                .bind(held_since)
                .bind(now)
                .execute(&mut *tx)
                .await
                .context("take over idempotency key")?;
                if taken.rows_affected() == 1 {
                    tracing::info!(
                        user_id,
                        "Took over the idempotency key of a request that did not finish."
                    );
                    Begin::Fresh { claim_us: now }
                } else {
                    Begin::InFlight
                }
            } else {
                Begin::InFlight
            }
        };
        tx.commit().await.context("end idempotency key")?;
        return Ok(outcome);
    }
    Ok(Begin::InFlight)
}

/// Inside the placement transaction: records `order_id` as the key's result. `false` if the
/// hold `claim_us` was lost (taken over): the caller must roll back.
pub async fn attach(
    tx: &mut Tx,
    user_id: &str,
    key: &str,
    claim_us: i64,
    order_id: &str,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE idempotency_keys SET order_id = $4 WHERE user_id = $1 AND key = $2 \
         AND order_id IS NULL AND created_us = $3",
    )
    .bind(user_id)
    .bind(key)
    .bind(claim_us)
    .bind(order_id)
    .execute(&mut **tx)
    .await
    .context("attach order to idempotency key")?;
    Ok(done.rows_affected() == 1)
}

/// Gives the key back after a refused request (only if this request still holds it).
pub async fn forget(db: &Db, user_id: &str, key: &str, claim_us: i64) -> anyhow::Result<()> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND order_id IS NULL \
         AND created_us = $3",
    )
    .bind(user_id)
    .bind(key)
    .bind(claim_us)
    .execute(db.writer())
    .await
    .context("forget idempotency key")?;
    Ok(())
}

/// The order a key resolved to, if it has one now.
pub async fn order_of(db: &Db, user_id: &str, key: &str) -> anyhow::Result<Option<String>> {
    let row = sqlx::query("SELECT order_id FROM idempotency_keys WHERE user_id = $1 AND key = $2")
        .bind(user_id)
        .bind(key)
        .fetch_optional(db.writer())
        .await
        .context("select idempotency key order")?;
    Ok(match row {
        Some(r) => opt_text(&r, "order_id")?,
        None => None,
    })
}

/// Deletes keys created before `before_us`; returns how many.
pub async fn cleanup(db: &Db, before_us: i64) -> anyhow::Result<u64> {
    let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_us < $1")
        .bind(before_us)
        .execute(db.writer())
        .await
        .context("delete old idempotency keys")?;
    Ok(done.rows_affected())
}
