//! `/livez`, `/readyz` and `/metrics`.
//!
//! Liveness says the process serves HTTP at all. Readiness runs every registered check
//! (the database, what the service depends on) and turns 503 as soon as shutdown begins, so
//! load balancers and the registry stop sending new work before connections are drained.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use axum::{extract::State, response::IntoResponse, routing::get, Router};
use http::{header, StatusCode};
use serde_json::json;

type CheckFn =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// Readiness checks and the draining flag of one service.
#[derive(Clone, Default)]
pub struct Health {
    checks: Arc<std::sync::RwLock<Vec<(String, CheckFn)>>>,
    draining: Arc<AtomicBool>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("draining", &self.is_draining())
            .finish_non_exhaustive()
    }
}

impl Health {
    /// No checks yet: ready while not draining.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a named readiness check; it fails the probe with its error message.
    pub fn add_check<F, Fut>(&self, name: &str, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let f: CheckFn = Arc::new(move || Box::pin(check()));
        self.checks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push((name.to_owned(), f));
    }

    /// Marks the service as shutting down: readiness fails from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Runs every check (each bounded to 2 s); `(ready, per-check results)`.
    pub async fn check(&self) -> (bool, serde_json::Map<String, serde_json::Value>) {
        let checks: Vec<(String, CheckFn)> = self
            .checks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut ready = !self.is_draining();
        let mut out = serde_json::Map::new();
        for (name, check) in checks {
            let result = match tokio::time::timeout(Duration::from_secs(2), check()).await {
                Ok(r) => r,
                Err(_) => Err("timed out".to_owned()),
            };
            match result {
                Ok(()) => {
                    out.insert(name, json!("ok"));
                }
                Err(e) => {
                    ready = false;
                    out.insert(name, json!(e));
                }
            }
        }
        (ready, out)
    }

    /// The routes `/livez`, `/readyz`, `/metrics`.
    pub fn routes(&self) -> Router {
        Router::new()
            .route(
                "/livez",
                get(|| async { axum::Json(json!({"status": "live"})) }),
            )
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(self.clone())
    }
}

async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    let (ready, checks) = health.check().await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let state = if health.is_draining() {
        "draining"
    } else if ready {
        "ready"
    } else {
        "not_ready"
    };
    (
        status,
        axum::Json(json!({"status": state, "checks": checks})),
    )
}

async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
}
