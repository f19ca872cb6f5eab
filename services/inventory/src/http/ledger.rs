//! `GET /admin/ledger/{sku}`: a SKU's movements and the check of the ledger invariant.

use axum::extract::{rejection::PathRejection, Path, State};
use bazaar_runtime::{AdminUser, Json, Problem};

use super::{stock::sku_from_path, view::LedgerView};
use crate::{state::AppState, store::ledger};

/// The ledger of a SKU (admin); 404 when inventory has never heard of it.
pub(super) async fn get_ledger(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    sku: Result<Path<String>, PathRejection>,
) -> Result<Json<LedgerView>, Problem> {
    let sku = sku_from_path(sku)?;
    let ledger = ledger::read(state.db(), &sku).await?;
    if ledger.levels.is_none() && ledger.movements.is_empty() {
        return Err(Problem::not_found());
    }
    if !ledger.is_consistent() {
        tracing::error!(sku = %sku, "The stock levels disagree with the ledger.");
    }
    Ok(Json(LedgerView::new(&sku, &ledger)))
}
