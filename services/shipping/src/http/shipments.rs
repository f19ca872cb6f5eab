//! `GET /api/v1/admin/shipments`.

use axum::extract::State;
use bazaar_runtime::{AdminUser, Json, Problem, Query};
use bazaar_store::cursor::CursorError;
use serde::Deserialize;
use uuid::Uuid;

use super::view::{ShipmentPage, ShipmentView};
use crate::{
    domain::{Limit, OrderId, ShipmentStatus},
    state::AppState,
    store::shipments::{self, ListQuery},
};

/// The list's query string, taken as text and parsed by the domain types.
#[derive(Debug, Deserialize)]
pub(super) struct ListParams {
    order_id: Option<String>,
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /api/v1/admin/shipments?order_id=&status=&limit=&cursor=`: admin. With `order_id`,
/// the order's shipment (zero or one item); otherwise every shipment (or those in `status`),
/// newest first.
pub(super) async fn list(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    Query(params): Query<ListParams>,
) -> Result<Json<ShipmentPage>, Problem> {
    let limit = Limit::parse(params.limit.as_deref())?;
    if let Some(order_id) = params.order_id.as_deref().filter(|s| !s.is_empty()) {
        let order_id = OrderId::parse(order_id).map_err(|e| Problem::malformed(e.to_string()))?;
        let shipment = shipments::get(state.db(), &order_id).await?;
        return Ok(Json(ShipmentPage {
            items: shipment.iter().map(ShipmentView::from).collect(),
            next_cursor: None,
        }));
    }
    let status = match params.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(ShipmentStatus::parse(s).map_err(|_| {
            Problem::malformed(
                "status must be one of waiting, claimed, dispatched, failed, not_claimed",
            )
        })?),
    };
    let scope = format!("status={}", status.map_or("", ShipmentStatus::as_str));
    let after = match params.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => {
            let last = state.cursors().open(c, &scope).map_err(|e| match e {
                CursorError::OtherList => {
                    Problem::malformed("The cursor was issued for a different status.")
                }
                CursorError::Malformed | CursorError::Forged => {
                    Problem::malformed("The cursor is not valid.")
                }
            })?;
            Some(
                Uuid::try_parse(&last)
                    .map_err(|_| Problem::malformed("The cursor is not valid."))?,
            )
        }
    };
    let page = shipments::list(
        state.db(),
        &ListQuery {
            status,
            after,
            limit,
        },
    )
    .await?;
    let next_cursor = match page.items.last() {
        Some(last) if page.has_more => Some(state.cursors().seal(&last.id.to_string(), &scope)),
        _ => None,
    };
    Ok(Json(ShipmentPage {
        items: page.items.iter().map(ShipmentView::from).collect(),
        next_cursor,
    }))
}
