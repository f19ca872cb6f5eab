//! Injected faults: every `/v1` call passes here first.

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use bazaar_runtime::{Problem, ProblemKind};

use crate::state::AppState;

/// Answers 503 at once when the processor is down; otherwise waits the injected latency and
/// answers 503 (before the handler runs, so without effect) for the injected share of calls.
pub(super) async fn inject(State(state): State<AppState>, req: Request, next: Next) -> Response {
    state.count_call();
    let behaviour = state.behaviour();
    if behaviour.down() {
        metrics::counter!("bazaar_psp_injected_failures_total", "fault" => "down").increment(1);
        return unavailable();
    }
    if !behaviour.latency().is_zero() {
        tokio::time::sleep(behaviour.latency()).await;
    }
    if behaviour.fails(rand::random::<f64>()) {
        metrics::counter!("bazaar_psp_injected_failures_total", "fault" => "error_rate")
            .increment(1);
        return unavailable();
    }
    next.run(req).await
}

fn unavailable() -> Response {
    Problem::new(
        ProblemKind::UpstreamUnavailable,
        "The payment provider is unavailable; try again shortly.",
    )
    .with_retry_after(1)
    .into_response()
}
