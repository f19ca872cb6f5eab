//! `bazaar.inventory.v1.Inventory`: Reserve, Release and Commit for the order saga.
//!
//! Every call is keyed by the order id and idempotent (see
//! [`crate::store::reservations`]): a repeated call answers with the recorded outcome and
//! changes nothing. Bad input is `INVALID_ARGUMENT`; a database that is busy or unreachable
//! is `UNAVAILABLE` (safe to retry: the calls are idempotent); anything else is `INTERNAL`
//! with the cause logged, never sent.

use bazaar_proto::inventory::{
    inventory_server::{Inventory, InventoryServer},
    CommitRequest, CommitResponse, ReleaseRequest, ReleaseResponse, ReservationStatus as Pb,
    ReserveRequest, ReserveResponse,
};
use bazaar_runtime::{failpoint, time::now_micros};
use bazaar_store::Tx;
use tonic::{Request, Response, Status};

use crate::{
    domain::{OrderId, ReleaseReason, ReservationStatus, ReserveLines},
    state::AppState,
    store::reservations::{self, Outcome},
};

/// The failpoint hit after a Reserve committed and before it answers (a crash there leaves
/// the caller without an answer: its retry must get the recorded outcome).
pub const RESERVE_AFTER_COMMIT: &str = "inventory.reserve.after_commit";

/// The counter of Reserve answers, labelled `outcome` (`reserved`, `out_of_stock`,
/// `released`, `committed`).
pub const RESERVATIONS_TOTAL: &str = "bazaar_inventory_reservations_total";

/// The gRPC service over inventory's state.
#[derive(Debug, Clone)]
pub struct InventoryGrpc {
    state: AppState,
}

impl InventoryGrpc {
    /// The service over `state`.
    pub fn new(state: AppState) -> Self {
        InventoryGrpc { state }
    }

    /// The tonic server of this service.
    pub fn into_server(self) -> InventoryServer<InventoryGrpc> {
        InventoryServer::new(self)
    }
}

fn pb(status: Option<ReservationStatus>) -> Pb {
    match status {
        None => Pb::NotFound,
        Some(ReservationStatus::Reserved) => Pb::Reserved,
        Some(ReservationStatus::OutOfStock) => Pb::OutOfStock,
        Some(ReservationStatus::Released) => Pb::Released,
        Some(ReservationStatus::Committed) => Pb::Committed,
    }
}

fn order_id(raw: &str) -> Result<OrderId, Status> {
    OrderId::parse(raw).map_err(|e| Status::invalid_argument(e.to_string()))
}

/// The status for a failed call; the cause is logged here and never sent.
fn failure(call: &'static str, order: &OrderId, e: &anyhow::Error) -> Status {
    let transient = e.chain().any(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .is_some_and(|e| match e {
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
                // PostgreSQL: serialization failure, deadlock detected.
                sqlx::Error::Database(db) => {
                    db.code().is_some_and(|c| c == "40001" || c == "40P01")
                }
                _ => false,
            })
    });
    if transient {
        tracing::warn!(call, order_id = %order, error = %format!("{e:#}"), "Stock call failed; the database is unavailable.");
        Status::unavailable("inventory's database is unavailable; retry")
    } else {
        tracing::error!(call, order_id = %order, error = %format!("{e:#}"), "Stock call failed.");
        Status::internal("internal error")
    }
}

impl InventoryGrpc {
    async fn begin(&self, call: &'static str, order: &OrderId) -> Result<Tx, Status> {
        self.state
            .db()
            .begin()
            .await
            .map_err(|e| failure(call, order, &e.into()))
    }

    /// Ends a stock call's transaction: commits it and wakes the relay if the call changed
    /// anything, rolls it back otherwise.
    async fn finish(
        &self,
        call: &'static str,
        order: &OrderId,
        tx: Tx,
        result: anyhow::Result<Outcome>,
    ) -> Result<Outcome, Status> {
        let ended: anyhow::Result<Outcome> = async {
            let outcome = result?;
            if outcome.changed {
                tx.commit().await?;
                self.state.bus().notify();
            } else {
                tx.rollback().await?;
            }
            Ok(outcome)
        }
        .await;
        ended.map_err(|e| failure(call, order, &e))
    }
}

#[tonic::async_trait]
impl Inventory for InventoryGrpc {
    async fn reserve(
        &self,
        request: Request<ReserveRequest>,
    ) -> Result<Response<ReserveResponse>, Status> {
        let req = request.into_inner();
        let order = order_id(&req.order_id)?;
        let lines = ReserveLines::parse(req.lines.iter().map(|l| (l.sku.as_str(), l.quantity)))
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let mut tx = self.begin("reserve", &order).await?;
        let result = reservations::reserve(&mut tx, &order, &lines, now_micros()).await;
        let outcome = self.finish("reserve", &order, tx, result).await?;
        let status = pb(outcome.status);
        metrics::counter!(RESERVATIONS_TOTAL, "outcome" => outcome_label(status)).increment(1);
        if outcome.changed {
            tracing::info!(order_id = %order, status = status.as_str_name(), short_skus = ?outcome.short_skus, "Reserve decided.");
            failpoint::hit_async(RESERVE_AFTER_COMMIT)
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
        }
        Ok(Response::new(ReserveResponse {
            status: status.into(),
            short_skus: outcome.short_skus,
        }))
    }

    async fn release(
        &self,
        request: Request<ReleaseRequest>,
    ) -> Result<Response<ReleaseResponse>, Status> {
        let req = request.into_inner();
        let order = order_id(&req.order_id)?;
        let reason = ReleaseReason::parse(&req.reason)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let mut tx = self.begin("release", &order).await?;
        let result = reservations::release(&mut tx, &order, &reason, now_micros()).await;
        let outcome = self.finish("release", &order, tx, result).await?;
        if outcome.changed {
            tracing::info!(order_id = %order, reason = reason.as_str(), "Reservation released.");
        }
        Ok(Response::new(ReleaseResponse {
            status: pb(outcome.status).into(),
        }))
    }

    async fn commit(
        &self,
        request: Request<CommitRequest>,
    ) -> Result<Response<CommitResponse>, Status> {
        let order = order_id(&request.into_inner().order_id)?;
        let mut tx = self.begin("commit", &order).await?;
        let result = reservations::commit(&mut tx, &order, now_micros()).await;
        let outcome = self.finish("commit", &order, tx, result).await?;
        if outcome.changed {
            tracing::info!(order_id = %order, "Reservation committed.");
        }
        Ok(Response::new(CommitResponse {
            status: pb(outcome.status).into(),
        }))
    }
}

fn outcome_label(status: Pb) -> &'static str {
    match status {
        Pb::Reserved => "reserved",
        Pb::OutOfStock => "out_of_stock",
        Pb::Released => "released",
        Pb::Committed => "committed",
        Pb::NotFound => "not_found",
        Pb::Unspecified => "unspecified",
    }
}
