//! Recording and finding charges.

use anyhow::Context as _;
use bazaar_store::Db;
use sqlx::{any::AnyRow, Row};

use super::StoreError;
use crate::domain::{ChargeStatus, IdempotencyKey, NewCharge};

const COLUMNS: &str = "idempotency_key, id, status, amount_minor, currency, card_token, \
                       decline_code, refunded_minor, created_us";

/// A recorded charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// The processor's id for it.
    pub id: String,
    /// The client's key for it.
    pub idempotency_key: String,
    /// Captured or declined.
    pub status: ChargeStatus,
    /// How much was asked for.
    pub amount_minor: i64,
    /// In what currency.
    pub currency: String,
    /// The card charged.
    pub card_token: String,
    /// Why it was declined.
    pub decline_code: Option<String>,
    /// How much of it has been refunded.
    pub refunded_minor: i64,
    /// When it was recorded (µs since the epoch).
    pub created_us: i64,
}

/// Records `new` unless a charge with its key exists. Returns the charge and whether it was
/// created now; a charge with the same key but another amount, currency or card is a
/// [`StoreError::Conflict`].
#[tracing::instrument(skip(db, new), fields(key = %new.idempotency_key))]
pub async fn create(db: &Db, new: &NewCharge, now_us: i64) -> Result<(Charge, bool), StoreError> {
    let (status, decline_code) = new.card_token.outcome();
    let charge = Charge {
        id: format!("ch_{}", uuid::Uuid::now_v7().simple()),
        idempotency_key: new.idempotency_key.as_str().to_owned(),
        status,
        amount_minor: new.amount.minor(),
        currency: new.currency.as_str().to_owned(),
        card_token: new.card_token.as_str().to_owned(),
        decline_code: decline_code.map(str::to_owned),
        refunded_minor: 0,
        created_us: now_us,
    };
    // One statement: the key's uniqueness decides which of two racing requests creates it.
    let sql = format!(
        "INSERT INTO psp_charges ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (idempotency_key) DO NOTHING"
    );
    let done = sqlx::query(&sql)
        .bind(charge.idempotency_key.clone())
        .bind(charge.id.clone())
        .bind(charge.status.as_str())
        .bind(charge.amount_minor)
        .bind(charge.currency.clone())
        .bind(charge.card_token.clone())
        .bind(charge.decline_code.clone())
        .bind(charge.refunded_minor)
        .bind(charge.created_us)
        .execute(db.writer())
        .await
        .context("insert charge")?;
    if done.rows_affected() == 1 {
        return Ok((charge, true));
    }
    let existing = get(db, &new.idempotency_key)
        .await?
        .context("a charge key conflicted but its charge is gone")?;
    if existing.amount_minor != charge.amount_minor
        || existing.currency != charge.currency
        || existing.card_token != charge.card_token
    {
        return Err(StoreError::Conflict(
            "This idempotency key was used for a charge with another amount, currency or card.",
        ));
    }
    Ok((existing, false))
}

/// The charge with `key`, if any.
#[tracing::instrument(skip(db))]
pub async fn get(db: &Db, key: &IdempotencyKey) -> anyhow::Result<Option<Charge>> {
    let sql = format!("SELECT {COLUMNS} FROM psp_charges WHERE idempotency_key = $1");
    let row = sqlx::query(&sql)
        .bind(key.as_str().to_owned())
        .fetch_optional(db.reader())
        .await
        .context("select charge")?;
    row.as_ref().map(decode).transpose()
}

pub(crate) fn decode(row: &AnyRow) -> anyhow::Result<Charge> {
    let status: String = row.try_get("status").context("column status")?;
    Ok(Charge {
        id: row.try_get("id").context("column id")?,
        idempotency_key: row
            .try_get("idempotency_key")
            .context("column idempotency_key")?,
        status: ChargeStatus::parse(&status)
            .with_context(|| format!("stored charge has an unknown status {status:?}"))?,
        amount_minor: row.try_get("amount_minor").context("column amount_minor")?,
        currency: row.try_get("currency").context("column currency")?,
        card_token: row.try_get("card_token").context("column card_token")?,
        decline_code: row
            .try_get::<Option<String>, _>("decline_code")
            .context("column decline_code")?,
        refunded_minor: row
            .try_get("refunded_minor")
            .context("column refunded_minor")?,
        created_us: row.try_get("created_us").context("column created_us")?,
    })
}
