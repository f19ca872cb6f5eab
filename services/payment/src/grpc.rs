//! `bazaar.payment.v1.Payment` over gRPC: requests are parsed into domain commands and
//! [`PaymentError`]s become status codes the order service acts on (`UNAVAILABLE`: try later
//! or fall back; `DEADLINE_EXCEEDED`: ask GetPayment before retrying).

use bazaar_proto::payment::{
    payment_server::Payment as PaymentApi, ChargeRequest, ChargeResponse, GetPaymentRequest,
    PaymentStatus as ProtoStatus, PaymentView, RefundRequest, RefundResponse,
};
use tonic::{Request, Response, Status};

use crate::{
    domain::{ChargeCommand, OrderId, PaymentStatus, RefundReason},
    payments::{PaymentError, Payments},
};

pub use bazaar_proto::payment::payment_server::PaymentServer;

/// The gRPC face of [`Payments`].
#[derive(Debug, Clone)]
pub struct PaymentGrpc {
    payments: Payments,
}

impl PaymentGrpc {
    /// Serves `payments`.
    pub fn new(payments: Payments) -> Self {
        PaymentGrpc { payments }
    }
}

/// The wire value of a status.
pub fn proto_status(status: PaymentStatus) -> ProtoStatus {
    match status {
        PaymentStatus::None => ProtoStatus::None,
        PaymentStatus::Pending => ProtoStatus::Pending,
        PaymentStatus::Captured => ProtoStatus::Captured,
        PaymentStatus::Declined => ProtoStatus::Declined,
        PaymentStatus::Refunded => ProtoStatus::Refunded,
    }
}

fn status_of(e: PaymentError) -> Status {
    match e {
        PaymentError::Conflict(m) => Status::failed_precondition(m),
        PaymentError::Unavailable | PaymentError::BreakerOpen => {
            Status::unavailable("payment provider unavailable")
        }
        PaymentError::Timeout => {
            Status::deadline_exceeded("payment provider did not answer in time")
        }
        PaymentError::Unexpected(e) => {
            tracing::error!(error = %format!("{e:#}"), "Payment call failed.");
            Status::internal("internal error")
        }
    }
}

fn order_id(s: &str) -> Result<OrderId, Status> {
    OrderId::parse(s).map_err(|e| Status::invalid_argument(e.to_string()))
}

#[tonic::async_trait]
impl PaymentApi for PaymentGrpc {
    async fn charge(
        &self,
        request: Request<ChargeRequest>,
    ) -> Result<Response<ChargeResponse>, Status> {
        let r = request.into_inner();
        let cmd = ChargeCommand::parse(&r.order_id, r.amount_minor, &r.currency, &r.card_token)
            .map_err(Status::invalid_argument)?;
        let payment = self.payments.charge(cmd).await.map_err(status_of)?;
        Ok(Response::new(ChargeResponse {
            status: proto_status(payment.status).into(),
            decline_reason: payment.decline_reason.unwrap_or_default(),
        }))
    }

    async fn refund(
        &self,
        request: Request<RefundRequest>,
    ) -> Result<Response<RefundResponse>, Status> {
        let r = request.into_inner();
        let id = order_id(&r.order_id)?;
        let reason = RefundReason::parse(&r.reason).map_err(Status::invalid_argument)?;
        let outcome = self
            .payments
            .refund(&id, &reason)
            .await
            .map_err(status_of)?;
        Ok(Response::new(RefundResponse {
            status: proto_status(outcome.status).into(),
            refunded_minor: outcome.refunded_minor,
        }))
    }

    async fn get_payment(
        &self,
        request: Request<GetPaymentRequest>,
    ) -> Result<Response<PaymentView>, Status> {
        let id = order_id(&request.into_inner().order_id)?;
        let view = match self.payments.get(&id).await.map_err(status_of)? {
            None => PaymentView {
                order_id: id.as_str().to_owned(),
                status: ProtoStatus::None.into(),
                captured_minor: 0,
                refunded_minor: 0,
                attempts: 0,
            },
            Some(p) => PaymentView {
                order_id: p.order_id.as_str().to_owned(),
                status: proto_status(p.status).into(),
                captured_minor: p.captured_minor,
                refunded_minor: p.refunded_minor,
                attempts: p.attempts,
            },
        };
        Ok(Response::new(view))
    }
}
