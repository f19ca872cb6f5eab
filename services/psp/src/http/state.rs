//! `GET /admin/state`: every charge and refund the processor recorded, for consistency checks
//! after a chaos run (the `bazaar check` command reads it to find double charges).

use axum::extract::State;
use bazaar_runtime::{AdminUser, Json, Problem};
use bazaar_store::Backend;
use serde::{Deserialize, Serialize};
use sqlx::{any::AnyRow, AnyConnection, Row};

use crate::{state::AppState, SERVICE};

/// The answer of the processor's `GET /admin/state` (it has no event bus, so no
/// `messaging`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PspState {
    /// `"psp"`.
    pub service: String,
    /// Every charge, by idempotency key.
    pub charges: Vec<ChargeRecord>,
    /// Every refund, by idempotency key.
    pub refunds: Vec<RefundRecord>,
}

/// One charge as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeRecord {
    /// The client's key for it (the payment service sends `order-<order_id>`).
    pub idempotency_key: String,
    /// The processor's id.
    pub id: String,
    /// `captured` or `declined`.
    pub status: String,
    /// What was asked for.
    pub amount_minor: i64,
    /// How much of it has been refunded.
    pub refunded_minor: i64,
    /// The card charged.
    pub card_token: String,
}

/// One refund as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRecord {
    /// The client's key for it.
    pub idempotency_key: String,
    /// The key of the charge it gives money back from.
    pub charge_idempotency_key: String,
    /// What was given back.
    pub amount_minor: i64,
}

/// `GET /admin/state` (admin, like the other `/admin` endpoints): every charge and refund,
/// read in one snapshot.
pub(super) async fn state(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
) -> Result<Json<PspState>, Problem> {
    read(&state)
        .await
        .map(Json)
        .map_err(|e| Problem::internal(&e))
}

async fn read(state: &AppState) -> Result<PspState, sqlx::Error> {
    let db = state.db();
    let mut tx = db.reader().begin().await?;
    if db.backend() == Backend::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
    }
    let charges = rows(
        &mut tx,
        "SELECT idempotency_key, id, status, amount_minor, refunded_minor, card_token \
         FROM psp_charges ORDER BY idempotency_key",
        |r| {
            Ok(ChargeRecord {
                idempotency_key: r.try_get(0)?,
                id: r.try_get(1)?,
                status: r.try_get(2)?,
                amount_minor: r.try_get(3)?,
                refunded_minor: r.try_get(4)?,
                card_token: r.try_get(5)?,
            })
        },
    )
    .await?;
    let refunds = rows(
        &mut tx,
        "SELECT idempotency_key, charge_idempotency_key, amount_minor FROM psp_refunds \
         ORDER BY idempotency_key",
        |r| {
            Ok(RefundRecord {
                idempotency_key: r.try_get(0)?,
                charge_idempotency_key: r.try_get(1)?,
                amount_minor: r.try_get(2)?,
            })
        },
    )
    .await?;
    tx.rollback().await?;
    Ok(PspState {
        service: SERVICE.to_owned(),
        charges,
        refunds,
    })
}

/// Every row of `sql`, decoded.
async fn rows<T>(
    conn: &mut AnyConnection,
    sql: &str,
    decode: impl Fn(&AnyRow) -> Result<T, sqlx::Error>,
) -> Result<Vec<T>, sqlx::Error> {
    sqlx::query(sql)
        .fetch_all(conn)
        .await?
        .iter()
        .map(decode)
        .collect()
}
