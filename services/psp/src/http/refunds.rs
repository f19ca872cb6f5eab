//! `/v1/refunds`.

use axum::{extract::State, http::StatusCode};
use bazaar_runtime::{time::now_micros, time::rfc3339_micros, FieldError, Json, Problem};
use serde::{Deserialize, Serialize};

use super::charges::{field, required};
use crate::{
    domain::{Amount, IdempotencyKey, NewRefund},
    state::AppState,
    store::{
        refunds::{self, Refund},
        StoreError,
    },
};

/// `POST /v1/refunds`. Unknown fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RefundBody {
    /// Names the refund: the same key again returns the first refund.
    pub idempotency_key: Option<String>,
    /// The idempotency key of the captured charge to refund.
    pub charge_idempotency_key: Option<String>,
    /// Minor units to give back, ≥ 1 and at most what is left of the capture.
    pub amount_minor: Option<i64>,
}

impl TryFrom<RefundBody> for NewRefund {
    type Error = Vec<FieldError>;

    fn try_from(body: RefundBody) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let key = field(
            &mut errors,
            "/idempotency_key",
            required(body.idempotency_key)
                .and_then(|k| IdempotencyKey::parse(&k).map_err(|e| e.to_string())),
        );
        let charge = field(
            &mut errors,
            "/charge_idempotency_key",
            required(body.charge_idempotency_key)
                .and_then(|k| IdempotencyKey::parse(&k).map_err(|e| e.to_string())),
        );
        let amount = field(
            &mut errors,
            "/amount_minor",
            required(body.amount_minor).and_then(|a| Amount::new(a).map_err(|e| e.to_string())),
        );
        match (key, charge, amount) {
            (Some(idempotency_key), Some(charge_idempotency_key), Some(amount)) => Ok(NewRefund {
                idempotency_key,
                charge_idempotency_key,
                amount,
            }),
            _ => Err(errors),
        }
    }
}

/// A refund as the processor answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundView {
    /// The processor's id.
    pub id: String,
    /// The client's key.
    pub idempotency_key: String,
    /// The refunded charge's key.
    pub charge_idempotency_key: String,
    /// Always `succeeded`: the stand-in refunds synchronously.
    pub status: String,
    /// Minor units given back.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// When it was recorded (RFC 3339).
    pub created_at: String,
}

impl From<&Refund> for RefundView {
    fn from(r: &Refund) -> Self {
        RefundView {
            id: r.id.clone(),
            idempotency_key: r.idempotency_key.clone(),
            charge_idempotency_key: r.charge_idempotency_key.clone(),
            status: "succeeded".to_owned(),
            amount_minor: r.amount_minor,
            currency: r.currency.clone(),
            created_at: rfc3339_micros(r.created_us),
        }
    }
}

/// `POST /v1/refunds`: 201 with a new refund, 200 with the refund a repeated key names,
/// 404 for an unknown charge, 409 when the refund does not fit the charge.
pub(super) async fn create(
    State(state): State<AppState>,
    Json(body): Json<RefundBody>,
) -> Result<(StatusCode, Json<RefundView>), Problem> {
    let new = NewRefund::try_from(body).map_err(Problem::validation)?;
    let (refund, created) = refunds::create(state.db(), &new, now_micros())
        .await
        .map_err(store_problem)?;
    if created {
        metrics::counter!("bazaar_psp_refunds_total").increment(1);
        tracing::info!(key = %refund.idempotency_key, charge = %refund.charge_idempotency_key, amount_minor = refund.amount_minor, "Refund recorded.");
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(RefundView::from(&refund))))
}

pub(super) fn store_problem(e: StoreError) -> Problem {
    match e {
        StoreError::Conflict(detail) => Problem::conflict(detail),
        StoreError::NotFound => Problem::not_found(),
        StoreError::Unexpected(e) => Problem::from(e),
    }
}
