//! `/api/v1/orders` handlers.

use std::time::Duration;

use axum::{
    extract::{rejection::PathRejection, Path, State},
    http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use bazaar_runtime::{time::now_micros, AuthUser, Json, Problem, Query};
use bazaar_store::cursor::CursorError;
use serde::Deserialize;
use serde_json::Value;

use super::{parse_limit, path_id, prefer::parse_wait, view::OrderPage, OrderSummary, OrderView};
use crate::{
    domain::{IdempotencyKey, Order, OrderStatus},
    placement,
    state::AppState,
    store::{
        orders::{self, CancelOutcome},
        views,
    },
};

/// How often a `Prefer: wait` request looks at the order (besides being woken by this
/// instance's saga worker; another instance's worker may be the one running it).
const WAIT_POLL: Duration = Duration::from_millis(250);

/// `POST /api/v1/orders`.
pub(super) async fn place(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Response, Problem> {
    // Missing, empty, too long or not visible ASCII: all 400, as the contract says.
    let key = IdempotencyKey::parse(headers.get("idempotency-key").map(HeaderValue::as_bytes))
        .map_err(|e| Problem::malformed(e.to_string()))?;
    let wait = parse_wait(&headers);
    let placed = placement::place(&state, user.user_id(), &key, &body).await?;
    let mut order = placed.order;
    if let Some(secs) = wait {
        order = wait_for_outcome(&state, order, Duration::from_secs(secs)).await?;
    }
    let mut res = (StatusCode::CREATED, Json(OrderView::from(&order))).into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/orders/{}", order.id)) {
        h.insert(header::LOCATION, v);
    }
    if placed.replayed {
        h.insert(
            HeaderName::from_static("idempotent-replayed"),
            HeaderValue::from_static("true"),
        );
    }
    if let Some(v) = wait.and_then(|secs| HeaderValue::from_str(&format!("wait={secs}")).ok()) {
        h.insert(HeaderName::from_static("preference-applied"), v);
    }
    Ok(res)
}

/// The order once its placement has an outcome (it is no longer `pending`), or as it is
/// when `wait` has passed.
async fn wait_for_outcome(state: &AppState, order: Order, wait: Duration) -> anyhow::Result<Order> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut order = order;
    // Woken by this instance's saga worker when the order changes; the poll covers a
    // placement another instance's worker runs.
    let waiter = state.changed().register(&order.id);
    loop {
        if order.status != OrderStatus::Pending {
            return Ok(order);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(order);
        }
        let nap = WAIT_POLL.min(deadline - now);
        let woken = waiter.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        // Re-read after registering interest, so a change between the last read and now is
        // not missed.
        if let Some(fresh) = orders::get(state.db(), &order.id).await? {
            order = fresh;
        }
        if order.status != OrderStatus::Pending {
            return Ok(order);
        }
        tokio::select! {
            () = &mut woken => {}
            () = tokio::time::sleep(nap) => {}
        }
        if let Some(fresh) = orders::get(state.db(), &order.id).await? {
            order = fresh;
        }
    }
}

/// `GET /api/v1/orders/{id}`: the owner or an admin; anyone else gets 404.
pub(super) async fn get_one(
    State(state): State<AppState>,
    user: AuthUser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<OrderView>, Problem> {
    let id = path_id(id)?;
    let order = orders::get(state.db(), &id)
        .await?
        .filter(|o| o.user_id == user.user_id() || user.0.is_admin())
        .ok_or_else(Problem::not_found)?;
    Ok(Json(OrderView::from(&order)))
}

/// The list's query string.
#[derive(Debug, Deserialize)]
pub(super) struct ListParams {
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /api/v1/orders`: the caller's orders from the read model, newest first.
pub(super) async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Query(params): Query<ListParams>,
) -> Result<Json<OrderPage>, Problem> {
    let limit = parse_limit(params.limit.as_deref())?;
    let scope = format!("orders:{}", user.user_id());
    let after = match params.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(state.cursors().open(c, &scope).map_err(cursor_problem)?),
    };
    let (rows, has_more) = views::list(state.db(), user.user_id(), after.as_deref(), limit).await?;
    let next_cursor = match rows.last() {
        Some(last) if has_more => Some(state.cursors().seal(&last.order_id, &scope)),
        _ => None,
    };
    Ok(Json(OrderPage {
        items: rows.iter().map(OrderSummary::from).collect(),
        next_cursor,
    }))
}

pub(super) fn cursor_problem(e: CursorError) -> Problem {
    tracing::debug!(error = %e, "Refused a list cursor.");
    match e {
        CursorError::OtherList => Problem::malformed("The cursor was issued for another list."),
        CursorError::Malformed | CursorError::Forged => {
            Problem::malformed("The cursor is not valid.")
        }
    }
}

/// `POST /api/v1/orders/{id}/cancel`: the owner only; 202 once the cancel is accepted (the
/// saga then compensates), 409 once shipping has claimed the order or it is final.
pub(super) async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let id = path_id(id)?;
    match orders::request_cancel(state.db(), &id, user.user_id(), now_micros()).await? {
        CancelOutcome::Accepted | CancelOutcome::AlreadyRequested => {
            state.wake_sagas();
            let order = orders::get(state.db(), &id)
                .await?
                .ok_or_else(Problem::not_found)?;
            tracing::info!(order_id = %id, "Cancel accepted.");
            Ok((StatusCode::ACCEPTED, Json(OrderView::from(&order))).into_response())
        }
        CancelOutcome::Conflict => Err(Problem::conflict(
            "The order can no longer be cancelled: it is being prepared for shipment, or it is already final.",
        )),
        CancelOutcome::NotFound => Err(Problem::not_found()),
    }
}
