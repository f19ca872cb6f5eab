//! `/v1/charges`.

use axum::{
    extract::{rejection::PathRejection, Path, State},
    http::StatusCode,
};
use bazaar_runtime::{time::now_micros, time::rfc3339_micros, FieldError, Json, Problem};
use serde::{Deserialize, Serialize};

use super::refunds::store_problem;
use crate::{
    domain::{Amount, CardToken, Currency, IdempotencyKey, NewCharge},
    state::AppState,
    store::charges::{self, Charge},
};

/// `POST /v1/charges`. Unknown fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChargeBody {
    /// Names the charge: the same key again returns the first charge.
    pub idempotency_key: Option<String>,
    /// Minor units, ≥ 1.
    pub amount_minor: Option<i64>,
    /// ISO 4217 code.
    pub currency: Option<String>,
    /// A test token: `tok_declined`, `tok_timeout` or any other `tok_…`.
    pub card_token: Option<String>,
}

impl TryFrom<ChargeBody> for NewCharge {
    type Error = Vec<FieldError>;

    fn try_from(body: ChargeBody) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let key = field(
            &mut errors,
            "/idempotency_key",
            required(body.idempotency_key)
                .and_then(|k| IdempotencyKey::parse(&k).map_err(|e| e.to_string())),
        );
        let amount = field(
            &mut errors,
            "/amount_minor",
            required(body.amount_minor).and_then(|a| Amount::new(a).map_err(|e| e.to_string())),
        );
        let currency = field(
            &mut errors,
            "/currency",
            required(body.currency).and_then(|c| Currency::parse(&c).map_err(|e| e.to_string())),
        );
        let card_token = field(
            &mut errors,
            "/card_token",
            required(body.card_token).and_then(|t| CardToken::parse(&t).map_err(|e| e.to_string())),
        );
        match (key, amount, currency, card_token) {
            (Some(idempotency_key), Some(amount), Some(currency), Some(card_token)) => {
                Ok(NewCharge {
                    idempotency_key,
                    amount,
                    currency,
                    card_token,
                })
            }
            _ => Err(errors),
        }
    }
}

pub(super) fn required<T>(value: Option<T>) -> Result<T, String> {
    value.ok_or_else(|| "is required".to_owned())
}

/// The value of a parsed field, or `None` with its error recorded at `pointer`.
pub(super) fn field<T>(
    errors: &mut Vec<FieldError>,
    pointer: &str,
    result: Result<T, String>,
) -> Option<T> {
    result
        .map_err(|detail| errors.push(FieldError::new(pointer, detail)))
        .ok()
}

/// A charge as the processor answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeView {
    /// The processor's id.
    pub id: String,
    /// The client's key.
    pub idempotency_key: String,
    /// `captured` or `declined`.
    pub status: String,
    /// Minor units charged.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Why it was declined (`card_declined`), else `null`.
    pub decline_code: Option<String>,
    /// How much has been refunded so far.
    pub refunded_minor: i64,
    /// When it was recorded (RFC 3339).
    pub created_at: String,
}

impl From<&Charge> for ChargeView {
    fn from(c: &Charge) -> Self {
        ChargeView {
            id: c.id.clone(),
            idempotency_key: c.idempotency_key.clone(),
            status: c.status.as_str().to_owned(),
            amount_minor: c.amount_minor,
            currency: c.currency.clone(),
            decline_code: c.decline_code.clone(),
            refunded_minor: c.refunded_minor,
            created_at: rfc3339_micros(c.created_us),
        }
    }
}

/// `POST /v1/charges`: 201 with a new charge, 200 with the charge a repeated key names.
pub(super) async fn create(
    State(state): State<AppState>,
    Json(body): Json<ChargeBody>,
) -> Result<(StatusCode, Json<ChargeView>), Problem> {
    let new = NewCharge::try_from(body).map_err(Problem::validation)?;
    let (charge, created) = charges::create(state.db(), &new, now_micros())
        .await
        .map_err(store_problem)?;
    if !created {
        return Ok((StatusCode::OK, Json(ChargeView::from(&charge))));
    }
    metrics::counter!("bazaar_psp_charges_total", "status" => charge.status.as_str()).increment(1);
    tracing::info!(key = %charge.idempotency_key, status = charge.status.as_str(), amount_minor = charge.amount_minor, "Charge recorded.");
    if new.card_token.answers_late() {
        // Recorded first, answered late: a client that gave up waiting finds the charge
        // with GET, which is what query-before-retry relies on.
        tokio::time::sleep(state.timeout_token_delay()).await;
    }
    Ok((StatusCode::CREATED, Json(ChargeView::from(&charge))))
}

/// `GET /v1/charges/{idempotency_key}`: the charge, or 404.
pub(super) async fn get_one(
    State(state): State<AppState>,
    key: Result<Path<String>, PathRejection>,
) -> Result<Json<ChargeView>, Problem> {
    let key = key
        .ok()
        .and_then(|Path(k)| IdempotencyKey::parse(&k).ok())
        .ok_or_else(Problem::not_found)?;
    let charge = charges::get(state.db(), &key)
        .await?
        .ok_or_else(Problem::not_found)?;
    Ok(Json(ChargeView::from(&charge)))
}
