//! `/api/v1/admin/sagas`: operators list sagas and retry or abort the stuck ones.

use axum::{
    extract::{rejection::PathRejection, Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use bazaar_runtime::{time::now_micros, AdminUser, Json, Problem, Query};
use serde::Deserialize;

use super::{orders::cursor_problem, parse_limit, path_id, SagaPage, SagaView};
use crate::{
    domain::SagaStatus,
    state::AppState,
    store::sagas::{self, OperatorOutcome},
};

/// The list's query string.
#[derive(Debug, Deserialize)]
pub(super) struct ListParams {
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /api/v1/admin/sagas?status=stuck|running|done|aborted`.
pub(super) async fn list(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    Query(params): Query<ListParams>,
) -> Result<Json<SagaPage>, Problem> {
    let status = match params
        .status
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(s) => Some(SagaStatus::parse(s).ok_or_else(|| {
            Problem::malformed("status must be one of running, done, stuck, aborted.")
        })?),
    };
    let limit = parse_limit(params.limit.as_deref())?;
    let scope = format!("sagas:{}", status.map_or("all", SagaStatus::as_str));
    let after = match params.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(state.cursors().open(c, &scope).map_err(cursor_problem)?),
    };
    let (rows, has_more) = sagas::list(state.db(), status, after.as_deref(), limit).await?;
    let next_cursor = match rows.last() {
        Some(last) if has_more => Some(state.cursors().seal(&last.order_id, &scope)),
        _ => None,
    };
    Ok(Json(SagaPage {
        items: rows.iter().map(SagaView::from).collect(),
        next_cursor,
    }))
}

/// `POST /api/v1/admin/sagas/{id}/retry`: a `stuck` saga runs its step again.
pub(super) async fn retry(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let id = path_id(id)?;
    let outcome = sagas::retry(state.db(), &id, now_micros()).await?;
    tracing::info!(order_id = %id, admin = %admin.sub, ?outcome, "Operator retry.");
    answer(&state, &id, outcome, "Only a stuck saga can be retried.").await
}

/// `POST /api/v1/admin/sagas/{id}/abort`: a saga that cannot finish compensates and its
/// order ends `rejected(operator_aborted)`. Refused for a confirmed or cancelling order.
pub(super) async fn abort(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let id = path_id(id)?;
    let outcome = sagas::abort(state.db(), &id, now_micros()).await?;
    tracing::info!(order_id = %id, admin = %admin.sub, ?outcome, "Operator abort.");
    answer(
        &state,
        &id,
        outcome,
        "Only the unfinished saga of an order that is neither confirmed nor being cancelled can be aborted.",
    )
    .await
}

async fn answer(
    state: &AppState,
    id: &str,
    outcome: OperatorOutcome,
    conflict: &str,
) -> Result<Response, Problem> {
    match outcome {
        OperatorOutcome::Accepted => {
            state.wake_sagas();
            let saga = sagas::get(state.db(), id)
                .await?
                .ok_or_else(Problem::not_found)?;
            Ok((StatusCode::ACCEPTED, Json(SagaView::from(&saga))).into_response())
        }
        OperatorOutcome::Conflict => Err(Problem::conflict(conflict)),
        OperatorOutcome::NotFound => Err(Problem::not_found()),
    }
}
