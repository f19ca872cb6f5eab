//! Prometheus metrics: one process-wide recorder, rendered by every service's `/metrics`.
//!
//! Names follow Prometheus conventions (`bazaar_http_requests_total`,
//! `bazaar_http_request_duration_seconds`) with `service`, `route`, `method` and `status`
//! labels, so several services in one process (`bazaar up --in-process`, tests) stay apart.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder on first use and returns its handle (None if another recorder won).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_duration_seconds".to_owned()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0, 10.0,
                    ],
                )
                .ok()?;
            builder.install_recorder().ok()
        })
        .as_ref()
}

/// The text exposition of every metric recorded in this process.
pub fn render() -> String {
    handle().map(PrometheusHandle::render).unwrap_or_default()
}
