//! Resilience for calls to other services: tower layers for a timeout, budgeted and
//! jittered retries of idempotent requests, a rate-based circuit breaker, a bulkhead
//! (concurrency limit with a bounded wait) and a fallback. They work on any
//! `tower::Service` — a hyper or reqwest HTTP client, a tonic gRPC channel.
//!
//! Every layer has [`ResilienceError<E>`] as its error, so a stack reports one flat error;
//! [`LiftLayer`] (innermost) turns the client's own error `E` into
//! [`ResilienceError::Inner`]. The usual order, outermost first:
//!
//! ```
//! use std::{convert::Infallible, time::Duration};
//! use bazaar_resilience::{
//!     BreakerConfig, BulkheadLayer, CircuitBreaker, CircuitBreakerLayer, Idempotency,
//!     LiftLayer, RetryLayer, RetryPolicy, TimeoutLayer,
//! };
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = tower::service_fn(|req: Idempotency<&'static str>| async move {
//!     Ok::<_, Infallible>(req.request.len())
//! });
//! let breaker = CircuitBreaker::new("payment", BreakerConfig::default());
//! let service = ServiceBuilder::new()
//!     // Bounds the whole call, retries and back-off included.
//!     .layer(TimeoutLayer::new(Duration::from_secs(2)))
//!     // Outside the breaker: a retry is a new call the breaker may refuse.
//!     .layer(RetryLayer::new(RetryPolicy::default()))
//!     // Counts every attempt's outcome and latency; fails fast while open.
//!     .layer(CircuitBreakerLayer::new(breaker))
//!     // Inside the breaker: a full bulkhead is our overload, not the dependency's failure.
//!     .layer(BulkheadLayer::new(32, Duration::from_millis(100)))
//!     // The client's error becomes ResilienceError::Inner.
//!     .layer(LiftLayer::new())
//!     .service(client);
//! let n = service.oneshot(Idempotency::safe("ping")).await?;
//! assert_eq!(n, 4);
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! Code that calls through closures (a tonic client, `reqwest`) gets the same stack from
//! [`Resilience::call`].
//!
//! The [`CircuitBreaker`] is also usable without tower ([`CircuitBreaker::try_acquire`] →
//! [`Permit`]); every breaker is listed by [`breakers`] and `GET /admin/breakers`
//! ([`admin_routes`]) and exported as `bazaar_breaker_state{breaker}` (0 closed,
//! 1 half-open, 2 open) and `bazaar_breaker_transitions_total{breaker,to}`.
//! Time is tokio's, so tests with paused time drive every layer.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod bench;
pub mod breaker;
pub mod bulkhead;
pub mod error;
pub mod fallback;
pub mod lift;
pub mod retry;
pub mod stack;
pub mod timeout;

pub use admin::admin_routes;
pub use bench::{bench_overhead, measure_overhead, OverheadReport};
pub use breaker::{
    breakers, BreakerConfig, BreakerSnapshot, BreakerState, CircuitBreaker, CircuitBreakerLayer,
    Classify, Outcome, Permit,
};
pub use bulkhead::BulkheadLayer;
pub use error::{BreakerOpen, ResilienceError};
pub use fallback::{fallback, FallbackLayer};
pub use lift::{lift, LiftLayer};
pub use retry::{Idempotency, Idempotent, RetryBudget, RetryLayer, RetryPolicy};
pub use stack::Resilience;
pub use timeout::TimeoutLayer;
