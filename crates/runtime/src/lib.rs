//! The service runtime every Bazaar service is built on.
//!
//! It owns the parts that must behave identically on every port: RFC 9457 problem+json
//! errors, request ids and W3C `traceparent` propagation, structured logs with the trace id,
//! Prometheus RED metrics per route, `/livez` + `/readyz` + `/metrics`, token verification
//! (through [`bazaar_auth`]), JSON and query extractors whose rejections are problems, and
//! an HTTP server with header limits and graceful shutdown that binds port 0 for tests.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use bazaar_runtime::{App, Health, ServiceStack};
//!
//! # async fn run() -> anyhow::Result<()> {
//! let routes = Router::new().route("/hello", get(|| async { "hi" }));
//! let stack = ServiceStack::new("hello", Health::new());
//! let app = App::bind("127.0.0.1:0".parse()?, stack.wrap(routes)).await?;
//! println!("listening on {}", app.port());
//! app.run_until_stopped(bazaar_runtime::shutdown::signal()).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod context;
pub mod extract;
pub mod failpoint;
pub mod health;
pub mod metrics;
pub mod middleware;
pub mod page;
pub mod panics;
pub mod problem;
pub mod shutdown;
pub mod telemetry;
pub mod time;

pub use app::App;
pub use auth::{AdminUser, AuthUser};
pub use context::RequestContext;
pub use extract::{Json, Query};
pub use health::Health;
pub use middleware::ServiceStack;
pub use problem::{FieldError, Problem, ProblemKind};
