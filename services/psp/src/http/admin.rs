//! `/admin/*`: the faults to inject, and counts for tests.

use axum::extract::State;
use bazaar_runtime::{AdminUser, FieldError, Json, Problem};
use serde::{Deserialize, Serialize};

use crate::{
    domain::{Behaviour, BehaviourError},
    state::AppState,
    store::{self, Stats},
};

/// `PUT /admin/behaviour`: the whole behaviour; an absent field is its harmless default.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BehaviourBody {
    /// Added to every `/v1` call (0–60000).
    pub latency_ms: Option<u64>,
    /// Share of `/v1` calls answered 503 without effect (0–1).
    pub error_rate: Option<f64>,
    /// Every `/v1` call answered 503 at once.
    pub down: Option<bool>,
}

/// The behaviour as `GET /admin/behaviour` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BehaviourView {
    /// Added to every `/v1` call.
    pub latency_ms: u64,
    /// Share of `/v1` calls answered 503.
    pub error_rate: f64,
    /// Every `/v1` call answered 503.
    pub down: bool,
}

impl From<Behaviour> for BehaviourView {
    fn from(b: Behaviour) -> Self {
        BehaviourView {
            latency_ms: u64::try_from(b.latency().as_millis()).unwrap_or(u64::MAX),
            error_rate: b.error_rate(),
            down: b.down(),
        }
    }
}

/// `GET /admin/behaviour`.
pub(super) async fn get_behaviour(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
) -> Json<BehaviourView> {
    Json(state.behaviour().into())
}

/// `PUT /admin/behaviour`: replaces the behaviour (kept in memory; a restart resets it).
pub(super) async fn put_behaviour(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Json(body): Json<BehaviourBody>,
) -> Result<Json<BehaviourView>, Problem> {
    let behaviour = Behaviour::new(
        body.latency_ms.unwrap_or(0),
        body.error_rate.unwrap_or(0.0),
        body.down.unwrap_or(false),
    )
    .map_err(|e| {
        let pointer = match e {
            BehaviourError::Latency => "/latency_ms",
            BehaviourError::ErrorRate => "/error_rate",
        };
        Problem::validation(vec![FieldError::new(pointer, e.to_string())])
    })?;
    state.set_behaviour(behaviour);
    tracing::warn!(admin = %admin.sub, ?behaviour, "Payment provider behaviour changed.");
    Ok(Json(behaviour.into()))
}

/// The body of `GET /admin/stats`.
#[derive(Debug, Clone, Serialize)]
pub struct StatsView {
    /// What the database holds.
    #[serde(flatten)]
    pub recorded: Stats,
    /// `/v1` calls that reached this process since it started, failed ones included: a
    /// client's circuit breaker that fails fast leaves this unchanged.
    pub calls: u64,
}

/// `GET /admin/stats`: how many charges and refunds have been recorded, and calls received.
pub(super) async fn stats(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
) -> Result<Json<StatsView>, Problem> {
    let calls = state.calls();
    Ok(Json(StatsView {
        recorded: store::stats(state.db()).await?,
        calls,
    }))
}
