//! Recording refunds of captured charges.

use anyhow::Context as _;
use bazaar_store::{is_unique_violation, Db, Tx};
use sqlx::{any::AnyRow, Row};

use super::{charges, StoreError};
use crate::domain::{ChargeStatus, NewRefund};

const COLUMNS: &str =
    "idempotency_key, id, charge_idempotency_key, amount_minor, currency, created_us";

/// A recorded refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// The processor's id for it.
    pub id: String,
    /// The client's key for it.
    pub idempotency_key: String,
    /// The refunded charge's key.
    pub charge_idempotency_key: String,
    /// How much was given back.
    pub amount_minor: i64,
    /// In the charge's currency.
    pub currency: String,
    /// When it was recorded (µs since the epoch).
    pub created_us: i64,
}

/// Records `new` unless a refund with its key exists. Returns the refund and whether it was
/// created now. [`StoreError::NotFound`] when the charge is unknown; a conflict when the key
/// was used for another refund, the charge was not captured, or the amount exceeds what is
/// left of the capture.
#[tracing::instrument(skip(db, new), fields(key = %new.idempotency_key))]
pub async fn create(db: &Db, new: &NewRefund, now_us: i64) -> Result<(Refund, bool), StoreError> {
    let mut tx = db.begin().await.context("begin refund")?;
    if let Some(existing) = find(&mut tx, new.idempotency_key.as_str()).await? {
        return same_refund(existing, new).map(|r| (r, false));
    }
    // Conditional update: the check and the change are one statement, so two refunds racing
    // for the same capture can never take more than it holds.
    let taken = sqlx::query(
        "UPDATE psp_charges SET refunded_minor = refunded_minor + $2 \
         WHERE idempotency_key = $1 AND status = $3 AND amount_minor - refunded_minor >= $2 \
         RETURNING currency",
    )
    .bind(new.charge_idempotency_key.as_str().to_owned())
    .bind(new.amount.minor())
    .bind(ChargeStatus::Captured.as_str())
    .fetch_optional(&mut *tx)
    .await
    .context("take the refund from the charge")?;
    let Some(row) = taken else {
        // A concurrent refund with the same key may have taken the amount while this
        // statement waited for the row: then it is the answer (each statement sees the
        // latest commits under READ COMMITTED).
        if let Some(existing) = find(&mut tx, new.idempotency_key.as_str()).await? {
            return same_refund(existing, new).map(|r| (r, false));
        }
        let charge = sqlx::query(
            "SELECT idempotency_key, id, status, amount_minor, currency, card_token, \
             decline_code, refunded_minor, created_us FROM psp_charges WHERE idempotency_key = $1",
        )
        .bind(new.charge_idempotency_key.as_str().to_owned())
        .fetch_optional(&mut *tx)
        .await
        .context("select the charge to refund")?;
        return Err(match charge.as_ref().map(charges::decode).transpose()? {
            None => StoreError::NotFound,
            Some(c) if c.status != ChargeStatus::Captured => {
                StoreError::Conflict("Only a captured charge can be refunded.")
            }
            Some(_) => StoreError::Conflict("The amount exceeds what is left to refund."),
        });
    };
    let refund = Refund {
        id: format!("re_{}", uuid::Uuid::now_v7().simple()),
        idempotency_key: new.idempotency_key.as_str().to_owned(),
        charge_idempotency_key: new.charge_idempotency_key.as_str().to_owned(),
        amount_minor: new.amount.minor(),
        currency: row.try_get("currency").context("column currency")?,
        created_us: now_us,
    };
    let sql = format!("INSERT INTO psp_refunds ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)");
    let inserted = sqlx::query(&sql)
        .bind(refund.idempotency_key.clone())
        .bind(refund.id.clone())
        .bind(refund.charge_idempotency_key.clone())
        .bind(refund.amount_minor)
        .bind(refund.currency.clone())
        .bind(refund.created_us)
        .execute(&mut *tx)
        .await;
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            // A concurrent request with the same key won: ours (and its deduction) rolls back.
            drop(tx);
            let mut tx = db.begin().await.context("begin reading the refund")?;
            let existing = find(&mut tx, new.idempotency_key.as_str())
                .await?
                .context("a refund key conflicted but its refund is gone")?;
            return same_refund(existing, new).map(|r| (r, false));
        }
        Err(e) => return Err(anyhow::Error::new(e).context("insert refund").into()),
    }
    tx.commit().await.context("commit refund")?;
    Ok((refund, true))
}

fn same_refund(existing: Refund, new: &NewRefund) -> Result<Refund, StoreError> {
    if existing.charge_idempotency_key != new.charge_idempotency_key.as_str()
        || existing.amount_minor != new.amount.minor()
    {
        return Err(StoreError::Conflict(
            "This idempotency key was used for a refund of another charge or amount.",
        ));
    }
    Ok(existing)
}

async fn find(tx: &mut Tx, key: &str) -> anyhow::Result<Option<Refund>> {
    let sql = format!("SELECT {COLUMNS} FROM psp_refunds WHERE idempotency_key = $1");
    let row = sqlx::query(&sql)
        .bind(key.to_owned())
        .fetch_optional(&mut **tx)
        .await
        .context("select refund")?;
    row.as_ref().map(decode).transpose()
}

fn decode(row: &AnyRow) -> anyhow::Result<Refund> {
    Ok(Refund {
        id: row.try_get("id").context("column id")?,
        idempotency_key: row
            .try_get("idempotency_key")
            .context("column idempotency_key")?,
        charge_idempotency_key: row
            .try_get("charge_idempotency_key")
            .context("column charge_idempotency_key")?,
        amount_minor: row.try_get("amount_minor").context("column amount_minor")?,
        currency: row.try_get("currency").context("column currency")?,
        created_us: row.try_get("created_us").context("column created_us")?,
    })
}
