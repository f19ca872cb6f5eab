//! `bazaar.catalog.v1.Catalog`: products for other services (order prices at placement).

use bazaar_proto::catalog::{
    catalog_server::Catalog, GetProductsRequest, GetProductsResponse, Product as ProductMsg,
};
use bazaar_store::Db;
use tonic::{Request, Response, Status};

use crate::{domain::ProductId, store::products};

/// The most ids one call may ask for (an order has at most 50 lines).
const MAX_IDS: usize = 100;

/// The gRPC face of the catalog.
#[derive(Debug, Clone)]
pub struct CatalogGrpc {
    db: Db,
}

impl CatalogGrpc {
    /// Serves products from `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[tonic::async_trait]
impl Catalog for CatalogGrpc {
    async fn get_products(
        &self,
        request: Request<GetProductsRequest>,
    ) -> Result<Response<GetProductsResponse>, Status> {
        let ids = request.into_inner().product_ids;
        if ids.len() > MAX_IDS {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_IDS} product ids per call"
            )));
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            // Ids that are not UUIDs are unknown, like ids of deleted products.
            let Some(id) = ProductId::parse(&id) else {
                continue;
            };
            let found = products::get(&self.db, id).await.map_err(|e| {
                tracing::error!(error = %format!("{e:#}"), "GetProducts failed.");
                Status::unavailable("catalog database unavailable")
            })?;
            if let Some(p) = found {
                out.push(ProductMsg {
                    id: p.id.to_string(),
                    sku: p.sku.as_str().to_owned(),
                    name: p.name.as_str().to_owned(),
                    price_minor: p.price.amount_minor(),
                    currency: p.price.currency().code().to_owned(),
                });
            }
        }
        Ok(Response::new(GetProductsResponse { products: out }))
    }
}
