//! `/api/v1/inventory/{sku}` handlers (admin).

use anyhow::Context as _;
use axum::extract::{rejection::PathRejection, Path, State};
use bazaar_runtime::{time::now_micros, AdminUser, Json, Problem};

use super::{
    body::{RestockBody, StockCountBody},
    view::LevelsView,
};
use crate::{
    domain::{OnHand, Quantity, Sku},
    state::AppState,
    store::stock::{self, RestockOutcome, SetOutcome},
};

/// A path SKU that is not a valid SKU names no stock record: 404, like an unknown one.
pub(super) fn sku_from_path(path: Result<Path<String>, PathRejection>) -> Result<Sku, Problem> {
    path.ok()
        .and_then(|Path(s)| Sku::parse(&s).ok())
        .ok_or_else(Problem::not_found)
}

/// `GET /api/v1/inventory/{sku}`.
pub(super) async fn get_levels(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    sku: Result<Path<String>, PathRejection>,
) -> Result<Json<LevelsView>, Problem> {
    let sku = sku_from_path(sku)?;
    let levels = stock::levels(state.db(), &sku)
        .await?
        .ok_or_else(Problem::not_found)?;
    Ok(Json(LevelsView::new(&sku, levels)))
}

/// `PUT /api/v1/inventory/{sku}`: a stock count; creates the record of an unknown SKU.
pub(super) async fn count(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    sku: Result<Path<String>, PathRejection>,
    Json(body): Json<StockCountBody>,
) -> Result<Json<LevelsView>, Problem> {
    let sku = sku_from_path(sku)?;
    let on_hand = OnHand::try_from(body).map_err(Problem::validation)?;
    let mut tx = state.db().begin().await.context("begin stock count")?;
    let levels = match stock::set_on_hand(&mut tx, &sku, on_hand, now_micros()).await? {
        SetOutcome::Set(levels) => levels,
        SetOutcome::BelowReserved(levels) => {
            // Dropping the transaction rolls it back.
            return Err(Problem::conflict(format!(
                "on_hand cannot be set below the {} units reserved for orders.",
                levels.reserved
            )));
        }
    };
    tx.commit().await.context("commit stock count")?;
    state.bus().notify();
    tracing::info!(sku = %sku, on_hand = levels.on_hand, admin = %admin.sub, "Stock counted.");
    Ok(Json(LevelsView::new(&sku, levels)))
}

/// `POST /api/v1/inventory/{sku}/restock`: adds units to a known SKU (404 for an unknown
/// one: a restock adds to a count, it does not start one).
pub(super) async fn restock(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    sku: Result<Path<String>, PathRejection>,
    Json(body): Json<RestockBody>,
) -> Result<Json<LevelsView>, Problem> {
    let sku = sku_from_path(sku)?;
    let quantity = Quantity::try_from(body).map_err(Problem::validation)?;
    let mut tx = state.db().begin().await.context("begin restock")?;
    let levels = match stock::restock(&mut tx, &sku, quantity, now_micros()).await? {
        RestockOutcome::Restocked(levels) => levels,
        RestockOutcome::UnknownSku => return Err(Problem::not_found()),
        RestockOutcome::TooMuch(levels) => {
            return Err(Problem::conflict(format!(
                "{sku} has {} units on hand; adding {} would pass the maximum of {}.",
                levels.on_hand,
                quantity.get(),
                OnHand::MAX
            )))
        }
    };
    tx.commit().await.context("commit restock")?;
    state.bus().notify();
    tracing::info!(sku = %sku, quantity = quantity.get(), on_hand = levels.on_hand, admin = %admin.sub, "Restocked.");
    Ok(Json(LevelsView::new(&sku, levels)))
}
