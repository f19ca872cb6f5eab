//! `/api/v1/products` handlers.

use axum::{
    extract::{rejection::PathRejection, Path, State},
    http::{header, StatusCode},
    response::IntoResponse,
};
use bazaar_runtime::{time::now_micros, AdminUser, Json, Problem, Query};
use serde::Deserialize;

use super::{
    body::{CreateProductBody, PatchProductBody},
    view::{ProductPage, ProductView},
};
use crate::{
    cursor::{CursorError, Filters},
    domain::{Category, Limit, NewProduct, ProductId, ProductPatch, SearchText},
    state::AppState,
    store::{
        products::{self, ListQuery},
        StoreError,
    },
};

/// The list's query string, taken as text and parsed by the domain types (so every bad
/// value is the same kind of 400).
#[derive(Debug, Deserialize)]
pub(super) struct ListParams {
    q: Option<String>,
    category: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /api/v1/products`: public.
pub(super) async fn list(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Json<ProductPage>, Problem> {
    let search =
        SearchText::parse(params.q.as_deref()).map_err(|e| Problem::malformed(e.to_string()))?;
    let category = match params
        .category
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        None => None,
        Some(c) => {
            Some(Category::parse(c).map_err(|e| Problem::malformed(format!("category {e}")))?)
        }
    };
    let limit = Limit::parse(params.limit.as_deref())?;
    let filters = Filters {
        q: search.as_ref(),
        category: category.as_ref(),
    };
    let after = match params.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(filters.open(state.cursors(), c).map_err(|e| {
            tracing::debug!(error = %e, "Refused a list cursor.");
            match e {
                CursorError::OtherList => {
                    Problem::malformed("The cursor was issued for a different q or category.")
                }
                CursorError::Malformed | CursorError::Forged => {
                    Problem::malformed("The cursor is not valid.")
                }
            }
        })?),
    };
    let query = ListQuery {
        search: search.clone(),
        category: category.clone(),
        after,
        limit,
    };
    let page = products::list(state.db(), &query).await?;
    let next_cursor = match page.items.last() {
        Some(last) if page.has_more => Some(filters.seal(state.cursors(), last.id)),
        _ => None,
    };
    Ok(Json(ProductPage {
        items: page.items.iter().map(ProductView::from).collect(),
        next_cursor,
    }))
}

/// `GET /api/v1/products/{id}`: public.
pub(super) async fn get_one(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ProductView>, Problem> {
    let id = product_id(id)?;
    let product = products::get(state.db(), id)
        .await?
        .ok_or_else(Problem::not_found)?;
    Ok(Json(ProductView::from(&product)))
}

/// `POST /api/v1/products`: admin.
pub(super) async fn create(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Json(body): Json<CreateProductBody>,
) -> Result<impl IntoResponse, Problem> {
    let new = NewProduct::try_from(body).map_err(Problem::validation)?;
    let product = products::insert(state.db(), new, now_micros())
        .await
        .map_err(|e| match e {
            StoreError::DuplicateSku => {
                Problem::conflict("A product with this SKU already exists.")
            }
            StoreError::Unexpected(e) => Problem::from(e),
        })?;
    state.published();
    tracing::info!(product_id = %product.id, sku = %product.sku, admin = %admin.sub, "Product created.");
    let location = format!("/api/v1/products/{}", product.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(ProductView::from(&product)),
    ))
}

/// `PATCH /api/v1/products/{id}`: admin.
pub(super) async fn update(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    id: Result<Path<String>, PathRejection>,
    Json(body): Json<PatchProductBody>,
) -> Result<Json<ProductView>, Problem> {
    let id = product_id(id)?;
    let patch = ProductPatch::try_from(body).map_err(Problem::validation)?;
    let product = products::update(state.db(), id, &patch, now_micros())
        .await?
        .ok_or_else(Problem::not_found)?;
    if !patch.is_empty() {
        state.published();
        tracing::info!(product_id = %product.id, admin = %admin.sub, "Product updated.");
    }
    Ok(Json(ProductView::from(&product)))
}

/// A path id that is not a UUID names no product: 404, like an unknown one.
fn product_id(path: Result<Path<String>, PathRejection>) -> Result<ProductId, Problem> {
    path.ok()
        .and_then(|Path(s)| ProductId::parse(&s))
        .ok_or_else(Problem::not_found)
}
