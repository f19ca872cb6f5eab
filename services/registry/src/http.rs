//! The registry's HTTP API.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    extract::{rejection::PathRejection, Path, State},
    response::{IntoResponse, Response},
    routing::{delete, get, post, put},
    Router,
};
use bazaar_discovery::{AllInstances, Instance, LeaseGrant, ServiceInstances};
use bazaar_runtime::{middleware::no_content, Health, Json, Problem, ProblemKind, Query};
use http::StatusCode;
use serde::Deserialize;

use crate::{
    domain::{heartbeat_interval, validate},
    store::{RegisterError, Table},
};

/// How long a long-poll waits for a change unless told.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// The longest a long-poll may wait.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// How often a waiting long-poll checks whether shutdown has begun: it must not hold the
/// connection (and so the drain) for up to a minute.
const DRAIN_CHECK: Duration = Duration::from_millis(250);

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    table: Arc<Table>,
    health: Health,
}

impl AppState {
    /// An empty registry handing out leases of `lease_ttl`; `health` tells long-polls when to
    /// stop waiting (shutdown).
    pub fn new(lease_ttl: Duration, health: Health) -> Self {
        AppState {
            table: Arc::new(Table::new(lease_ttl)),
            health,
        }
    }

    /// The table of instances.
    pub fn table(&self) -> &Arc<Table> {
        &self.table
    }

    fn lease(&self) -> LeaseGrant {
        let ttl = self.table.ttl();
        LeaseGrant {
            lease_ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            heartbeat_ms: u64::try_from(heartbeat_interval(ttl).as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// The registry's routes (without the service stack).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/instances", post(register).get(list_all))
        .route("/v1/instances/{service}/{instance_id}", delete(deregister))
        .route(
            "/v1/instances/{service}/{instance_id}/heartbeat",
            put(heartbeat),
        )
        .route("/v1/services/{service}/instances", get(list_service))
        .with_state(state)
}

async fn register(
    State(state): State<AppState>,
    Json(instance): Json<Instance>,
) -> Result<Response, Problem> {
    validate(&instance).map_err(Problem::validation)?;
    let (service, id, addr) = (
        instance.service.clone(),
        instance.instance_id.clone(),
        instance.http_addr.clone(),
    );
    match state.table.register(instance, Instant::now()) {
        Ok(outcome) => {
            tracing::debug!(service = %service, instance_id = %id, http_addr = %addr, ?outcome, "Registered.");
            Ok((StatusCode::CREATED, Json(state.lease())).into_response())
        }
        Err(RegisterError::Full) => {
            tracing::warn!(service = %service, instance_id = %id, "Registry is full; registration refused.");
            Err(Problem::conflict(
                "The registry holds as many instances as it accepts.",
            ))
        }
    }
}

async fn heartbeat(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, Problem> {
    let (service, id) = path_params(path)?;
    if state.table.heartbeat(&service, &id, Instant::now()) {
        Ok(no_content())
    } else {
        Err(Problem::not_found())
    }
}

async fn deregister(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, Problem> {
    let (service, id) = path_params(path)?;
    if state.table.deregister(&service, &id) {
        tracing::debug!(service = %service, instance_id = %id, "Deregistered.");
    }
    Ok(no_content())
}

async fn list_all(State(state): State<AppState>) -> Json<AllInstances> {
    let (index, instances) = state.table.all(Instant::now());
    Json(AllInstances { index, instances })
}

/// `?index=&wait=` of a long-poll.
#[derive(Debug, Deserialize)]
struct WatchParams {
    index: Option<u64>,
    wait: Option<u64>,
}

async fn list_service(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Query(params): Query<WatchParams>,
) -> Result<Json<ServiceInstances>, Problem> {
    let service = path_params(path)?;
    // Subscribing before the first read means a change between the read and the wait still
    // wakes the wait.
    let mut changes = state.table.subscribe();
    let (index, instances) = state.table.service(&service, Instant::now());
    let Some(seen) = params.index.filter(|&seen| seen == index) else {
        return Ok(Json(ServiceInstances { index, instances }));
    };
    let wait = params
        .wait
        .map_or(DEFAULT_WAIT, Duration::from_millis)
        .min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // A waiting watch is ended with 503 rather than with the unchanged set: the caller
        // then knows this registry is going away (a restarted one starts empty) instead of
        // silently moving on to whatever answers next on this port.
        if state.health.is_draining() {
            return Err(shutting_down());
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left.min(DRAIN_CHECK), changes.changed()).await {
            Ok(Ok(())) => {
                let (index, instances) = state.table.service(&service, Instant::now());
                if index != seen {
                    return Ok(Json(ServiceInstances { index, instances }));
                }
            }
            Ok(Err(_)) => return Err(shutting_down()),
            Err(_) => {}
        }
    }
    let (index, instances) = state.table.service(&service, Instant::now());
    Ok(Json(ServiceInstances { index, instances }))
}

fn shutting_down() -> Problem {
    Problem::new(
        ProblemKind::UpstreamUnavailable,
        "The registry is shutting down.",
    )
    .with_retry_after(1)
}

fn path_params<T>(path: Result<Path<T>, PathRejection>) -> Result<T, Problem> {
    path.map(|Path(p)| p)
        .map_err(|_| Problem::malformed("The path is malformed."))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    fn app() -> Router {
        router(AppState::new(Duration::from_secs(10), Health::new()))
    }

    fn post_json(body: &str) -> http::Request<Body> {
        http::Request::post("/v1/instances")
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap()
    }

    #[tokio::test]
    async fn registering_answers_the_lease() {
        let res = app()
            .oneshot(post_json(
                r#"{"service":"catalog","instance_id":"a","http_addr":"127.0.0.1:1"}"#,
            ))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let grant: LeaseGrant = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            grant,
            LeaseGrant {
                lease_ttl_ms: 10_000,
                heartbeat_ms: 3_333
            }
        );
    }

    #[tokio::test]
    async fn a_path_that_is_not_utf8_is_a_problem_not_a_panic() {
        let req = http::Request::put("/v1/instances/%FF/a/heartbeat")
            .body(Body::empty())
            .unwrap();
        let res = app().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    }
}
