//! The order service's gRPC API: shipping's claim of an order.

use bazaar_proto::order::{order_server::Order, ClaimRequest, ClaimResponse};
use bazaar_runtime::time::now_micros;
use bazaar_store::Db;
use tonic::{Request, Response, Status};

use crate::store::orders::{self, ClaimOutcome};

/// `bazaar.order.v1.Order`.
#[derive(Debug, Clone)]
pub struct OrderGrpc {
    db: Db,
}

impl OrderGrpc {
    /// The service over the order database.
    pub fn new(db: Db) -> Self {
        OrderGrpc { db }
    }
}

#[tonic::async_trait]
impl Order for OrderGrpc {
    /// Granted while the order is `confirmed` and no cancel was accepted; together with the
    /// cancel's conditional update this is the one referee between a cancel and a dispatch.
    async fn claim_for_shipment(
        &self,
        request: Request<ClaimRequest>,
    ) -> Result<Response<ClaimResponse>, Status> {
        let req = request.into_inner();
        let Ok(id) = uuid::Uuid::try_parse(&req.order_id) else {
            return Err(Status::not_found("no such order"));
        };
        let id = id.hyphenated().to_string();
        match orders::claim_for_shipment(&self.db, &id, now_micros()).await {
            Ok(ClaimOutcome::Decided { claimed, status }) => {
                tracing::info!(order_id = %id, shipment_id = %req.shipment_id, claimed, %status, "Shipment claim decided.");
                Ok(Response::new(ClaimResponse {
                    claimed,
                    order_status: status.as_str().to_owned(),
                }))
            }
            Ok(ClaimOutcome::NotFound) => Err(Status::not_found("no such order")),
            Err(e) => {
                tracing::error!(order_id = %id, error = %format!("{e:#}"), "Shipment claim failed.");
                Err(Status::unavailable("the order database is unavailable"))
            }
        }
    }
}
