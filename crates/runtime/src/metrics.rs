//! Prometheus metrics: one process-wide recorder, rendered by every service's `/metrics`.
//!
//! Names follow Prometheus conventions (`bazaar_http_requests_total`,
//! `bazaar_http_request_duration_seconds`) with `service`, `route`, `method` and `status`
//! labels, so several services in one process (`bazaar up --in-process`, tests) stay apart.

use std::{collections::HashMap, hash::BuildHasher, sync::OnceLock};

use metrics::{Counter, Histogram};
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

/// Distinct `route`/`method`/`status` label sets whose handles are kept; past it (a client
/// inventing methods) the labels are looked up in the registry on each request instead.
const MAX_CACHED_SERIES: usize = 4096;

/// The RED metrics of one service, with the handles of each label set registered once.
///
/// Building four owned labels and hashing them into the registry on every request cost more
/// than everything else the stack records; the handles are looked up here by a hash of the
/// borrowed labels instead.
pub(crate) struct RedMetrics {
    service: &'static str,
    series: std::sync::RwLock<HashMap<u64, Vec<Series>>>,
    hasher: std::hash::RandomState,
}

struct Series {
    route: Box<str>,
    method: http::Method,
    status: u16,
    requests: Counter,
    duration: Histogram,
}

impl RedMetrics {
    pub(crate) fn new(service: &'static str) -> Self {
        // Handles bind to the recorder installed when they are made: install it first.
        let _ = handle();
        Self {
            service,
            series: std::sync::RwLock::default(),
            hasher: std::hash::RandomState::new(),
        }
    }

    /// Counts one request and records its duration.
    pub(crate) fn record(&self, route: &str, method: &http::Method, status: u16, seconds: f64) {
        let key = self.hasher.hash_one((route, method.as_str(), status));
        let matches = |s: &Series| s.status == status && s.method == method && &*s.route == route;
        {
            let series = self.series.read().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = series.get(&key).and_then(|v| v.iter().find(|s| matches(s))) {
                s.requests.increment(1);
                s.duration.record(seconds);
                return;
            }
        }
        let labels = [
            ("service", self.service.to_owned()),
            ("route", route.to_owned()),
            ("method", method.as_str().to_owned()),
            ("status", status.to_string()),
        ];
        let requests = metrics::counter!("bazaar_http_requests_total", &labels);
        let duration = metrics::histogram!("bazaar_http_request_duration_seconds", &labels);
        requests.increment(1);
        duration.record(seconds);
        let mut series = self.series.write().unwrap_or_else(|e| e.into_inner());
        let known: usize = series.values().map(Vec::len).sum();
        let entry = series.entry(key).or_default();
        if known < MAX_CACHED_SERIES && !entry.iter().any(matches) {
            entry.push(Series {
                route: route.into(),
                method: method.clone(),
                status,
                requests,
                duration,
            });
        }
    }
}
