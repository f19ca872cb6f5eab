//! The order service's gRPC clients: catalog (prices), inventory (stock), payment (money).
//!
//! Each call, outermost first:
//! - a local timeout slightly longer than the call's deadline — a peer that stops answering
//!   at the network level cannot hold a saga step (and its lease) forever;
//! - a circuit breaker per service ([`bazaar_resilience::CircuitBreaker`]) — while a
//!   dependency keeps failing, calls fail fast instead of each waiting for its timeout;
//! - a healthy instance found through discovery ([`ServiceChannels`]: power-of-two-choices,
//!   failing instances ejected), with a deadline (`grpc-timeout`, enforced by the server).
//!
//! Retries are not made here: the saga retries a failed step with backoff and a durable
//! attempt count (so a retry survives a crash), and the placement handler answers a failed
//! catalog call with a problem the client may retry.

use std::{sync::Arc, time::Duration};

use bazaar_discovery::Resolver;
use bazaar_proto::{
    catalog::{catalog_client::CatalogClient, GetProductsRequest, Product},
    grpc::{self, ServiceChannels},
    inventory::{
        inventory_client::InventoryClient, Line, ReleaseRequest, ReleaseResponse, ReserveRequest,
        ReserveResponse,
    },
    payment::{
        payment_client::PaymentClient, ChargeRequest, ChargeResponse, GetPaymentRequest,
        PaymentView, RefundRequest, RefundResponse,
    },
};
use bazaar_resilience::{BreakerConfig, CircuitBreaker};
use tonic::{transport::Channel, Code, Status};

/// How much longer than the call's deadline the local timeout waits.
const LOCAL_GRACE: Duration = Duration::from_millis(500);

/// How the message of a call refused by an open breaker starts.
const BREAKER_OPEN: &str = "circuit breaker open";

/// Clients for the services the order service calls.
#[derive(Clone)]
pub struct Clients {
    catalog: Dependency,
    inventory: Dependency,
    payment: Dependency,
    timeout: Duration,
}

/// One called service: its channels and its breaker.
#[derive(Clone)]
struct Dependency {
    channels: ServiceChannels,
    breaker: CircuitBreaker,
}

impl Dependency {
    fn new(service: &str, resolver: Arc<dyn Resolver>, timeout: Duration) -> Self {
        let config = BreakerConfig {
            // Only a call close to its deadline is slow: payment legitimately takes up to
            // its provider timeout.
            slow_call_duration: timeout,
            ..BreakerConfig::default()
        };
        Dependency {
            channels: ServiceChannels::new(service, resolver),
            breaker: CircuitBreaker::new(&format!("order->{service}"), config),
        }
    }
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Clients {
    /// Clients resolving instances with `resolver`; every call gets `timeout`.
    pub fn new(resolver: Arc<dyn Resolver>, timeout: Duration) -> Self {
        Clients {
            catalog: Dependency::new("catalog", resolver.clone(), timeout),
            inventory: Dependency::new("inventory", resolver.clone(), timeout),
            payment: Dependency::new("payment", resolver, timeout),
            timeout,
        }
    }

    async fn guarded<T, F, Fut>(&self, dep: &Dependency, call: F) -> Result<T, Status>
    where
        F: FnOnce(Channel) -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        let service = dep.channels.service();
        let Ok(permit) = dep.breaker.try_acquire() else {
            return Err(Status::unavailable(format!(
                "{BREAKER_OPEN} for {service}: the call was not made"
            )));
        };
        let started = tokio::time::Instant::now();
        let result =
            match tokio::time::timeout(self.timeout + LOCAL_GRACE, dep.channels.call(call)).await {
                Ok(r) => r,
                Err(_) => Err(Status::deadline_exceeded(format!(
                    "{service} did not answer within {:?}",
                    self.timeout
                ))),
            };
        match &result {
            Ok(_) => permit.success(started.elapsed()),
            Err(s) if says_unhealthy(s) => permit.failure(),
            Err(_) => permit.ignore(),
        }
        result
    }

    /// catalog `GetProducts`: the known products among `ids`.
    pub async fn get_products(&self, ids: Vec<String>) -> Result<Vec<Product>, Status> {
        let t = self.timeout;
        self.guarded(&self.catalog, |c| async move {
            CatalogClient::new(c)
                .get_products(grpc::request(GetProductsRequest { product_ids: ids }, t))
                .await
                .map(|r| r.into_inner().products)
        })
        .await
    }

    /// inventory `Reserve`.
    pub async fn reserve(
        &self,
        order_id: &str,
        lines: Vec<Line>,
    ) -> Result<ReserveResponse, Status> {
        let (t, msg) = (
            self.timeout,
            ReserveRequest {
                order_id: order_id.to_owned(),
                lines,
            },
        );
        self.guarded(&self.inventory, |c| async move {
            InventoryClient::new(c)
                .reserve(grpc::request(msg, t))
                .await
                .map(tonic::Response::into_inner)
        })
        .await
    }

    /// inventory `Release`.
    pub async fn release(&self, order_id: &str, reason: &str) -> Result<ReleaseResponse, Status> {
        let (t, msg) = (
            self.timeout,
            ReleaseRequest {
                order_id: order_id.to_owned(),
                reason: reason.to_owned(),
            },
        );
        self.guarded(&self.inventory, |c| async move {
            InventoryClient::new(c)
                .release(grpc::request(msg, t))
                .await
                .map(tonic::Response::into_inner)
        })
        .await
    }

    /// payment `Charge`.
    pub async fn charge(&self, msg: ChargeRequest) -> Result<ChargeResponse, Status> {
        let t = self.timeout;
        self.guarded(&self.payment, |c| async move {
            PaymentClient::new(c)
                .charge(grpc::request(msg, t))
                .await
                .map(tonic::Response::into_inner)
        })
        .await
    }

    /// payment `Refund`.
    pub async fn refund(&self, order_id: &str, reason: &str) -> Result<RefundResponse, Status> {
        let (t, msg) = (
            self.timeout,
            RefundRequest {
                order_id: order_id.to_owned(),
                reason: reason.to_owned(),
            },
        );
        self.guarded(&self.payment, |c| async move {
            PaymentClient::new(c)
                .refund(grpc::request(msg, t))
                .await
                .map(tonic::Response::into_inner)
        })
        .await
    }

    /// payment `GetPayment`.
    pub async fn get_payment(&self, order_id: &str) -> Result<PaymentView, Status> {
        let (t, msg) = (
            self.timeout,
            GetPaymentRequest {
                order_id: order_id.to_owned(),
            },
        );
        self.guarded(&self.payment, |c| async move {
            PaymentClient::new(c)
                .get_payment(grpc::request(msg, t))
                .await
                .map(tonic::Response::into_inner)
        })
        .await
    }
}

/// Whether a `Charge` that failed with `status` certainly charged nothing because payment is
/// unusable: payment's own answer that the provider cannot be reached (its breaker is open,
/// the provider is down), or our breaker towards payment refusing to make the call. Not so
/// for a failure to reach the payment service (a transport error, no instance known) or a
/// timeout: their outcome is unknown.
pub fn is_provider_unavailable(status: &Status) -> bool {
    status.code() == Code::Unavailable
        && (status.message().starts_with(BREAKER_OPEN) || is_answer(status))
}

/// Whether `status` came from the called service (not from the transport or this client).
fn is_answer(status: &Status) -> bool {
    std::error::Error::source(status).is_none()
        && !status.message().starts_with("no instance of")
        && !status.message().starts_with(BREAKER_OPEN)
}

/// Whether a failed call says the service is unhealthy (counts against its breaker). An
/// answered UNAVAILABLE from payment (its provider is down) and application errors do not.
fn says_unhealthy(status: &Status) -> bool {
    match status.code() {
        Code::Unavailable => !is_answer(status),
        Code::DeadlineExceeded
        | Code::Cancelled
        | Code::Unknown
        | Code::Internal
        | Code::ResourceExhausted => true,
        _ => false,
    }
}

/// A status as one line for logs and the saga log (messages are internal, never shown to
/// customers).
pub fn describe(status: &Status) -> String {
    let mut s = format!("{:?}: {}", status.code(), status.message());
    if let Some(source) = std::error::Error::source(status) {
        s.push_str(&format!(" ({source})"));
    }
    s.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_answered_unavailable_means_the_provider_is_down() {
        assert!(is_provider_unavailable(&Status::unavailable(
            "psp breaker open"
        )));
        assert!(!is_provider_unavailable(&Status::unavailable(
            "no instance of payment is available"
        )));
        assert!(!is_provider_unavailable(&Status::deadline_exceeded("slow")));
        let transport = Status::from_error(Box::new(std::io::Error::other("connection refused")));
        assert!(!is_provider_unavailable(&transport), "{transport:?}");
        assert!(is_provider_unavailable(&Status::unavailable(format!(
            "{BREAKER_OPEN} for payment: the call was not made"
        ))));
    }

    #[test]
    fn only_failures_of_the_service_count_against_its_breaker() {
        assert!(says_unhealthy(&Status::deadline_exceeded("slow")));
        assert!(says_unhealthy(&Status::unavailable(
            "no instance of inventory is available"
        )));
        assert!(!says_unhealthy(&Status::unavailable("psp breaker open")));
        assert!(!says_unhealthy(&Status::not_found("no such order")));
        assert!(!says_unhealthy(&Status::invalid_argument("bad")));
    }
}
