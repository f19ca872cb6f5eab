//! `/api/v1/me/notifications` handlers.

use axum::{
    extract::{rejection::PathRejection, Path, State},
    response::Response,
};
use bazaar_runtime::{middleware::no_content, AuthUser, Json, Problem, Query};
use bazaar_store::cursor::CursorError;
use serde::Deserialize;

use super::view::{NotificationPage, NotificationView};
use crate::{
    domain::{Limit, NotificationId},
    state::AppState,
    store::notifications,
};

/// The list's query string, taken as text and parsed by the domain types.
#[derive(Debug, Deserialize)]
pub(super) struct ListParams {
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /api/v1/me/notifications`: the caller's notifications, newest first.
pub(super) async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Query(params): Query<ListParams>,
) -> Result<Json<NotificationPage>, Problem> {
    let user_id = user.user_id();
    let limit = Limit::parse(params.limit.as_deref())?;
    let after = match params.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => {
            let last = state.cursors().open(c, user_id).map_err(|e| {
                tracing::debug!(error = %e, "Refused a list cursor.");
                match e {
                    CursorError::OtherList => {
                        Problem::malformed("The cursor belongs to another list.")
                    }
                    CursorError::Malformed | CursorError::Forged => {
                        Problem::malformed("The cursor is not valid.")
                    }
                }
            })?;
            Some(
                NotificationId::parse(&last)
                    .ok_or_else(|| Problem::malformed("The cursor is not valid."))?,
            )
        }
    };
    let page = notifications::list(state.db(), user_id, after, limit).await?;
    let unread = notifications::unread(state.db(), user_id).await?;
    let next_cursor = match page.items.last() {
        Some(last) if page.has_more => Some(state.cursors().seal(&last.id.to_string(), user_id)),
        _ => None,
    };
    Ok(Json(NotificationPage {
        items: page.items.iter().map(NotificationView::from).collect(),
        next_cursor,
        unread,
    }))
}

/// `POST /api/v1/me/notifications/{id}/read`: 204; 404 unless the caller owns `id`.
pub(super) async fn mark_read(
    State(state): State<AppState>,
    user: AuthUser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    // A path id that is not a UUID names no notification: 404, like an unknown one.
    let id = id
        .ok()
        .and_then(|Path(s)| NotificationId::parse(&s))
        .ok_or_else(Problem::not_found)?;
    if notifications::mark_read(state.db(), user.user_id(), id).await? {
        Ok(no_content())
    } else {
        Err(Problem::not_found())
    }
}
