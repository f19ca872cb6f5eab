//! The proxy's metrics, with handles registered once per upstream service.
//!
//! `bazaar_gateway_upstream_requests_total{service,status}` counts upstream outcomes (an HTTP
//! status, or `timeout`, `connect_error`, `error`, `unavailable` when there was none) and
//! `bazaar_gateway_upstream_duration_seconds{service}` times them up to the response head.
//! Registering the handles at start keeps the request path from building label sets and
//! looking them up in the registry on every request (the common statuses are pre-registered;
//! rarer ones take the slow path).

use std::{collections::HashMap, sync::Arc, time::Duration};

use http::StatusCode;
use metrics::{Counter, Histogram, SharedString};

const REQUESTS: &str = "bazaar_gateway_upstream_requests_total";
const DURATION: &str = "bazaar_gateway_upstream_duration_seconds";

/// Statuses with a pre-registered counter.
const COMMON: &[(u16, &str)] = &[
    (200, "200"),
    (201, "201"),
    (202, "202"),
    (204, "204"),
    (304, "304"),
    (400, "400"),
    (401, "401"),
    (403, "403"),
    (404, "404"),
    (409, "409"),
    (422, "422"),
    (500, "500"),
    (502, "502"),
    (503, "503"),
    (504, "504"),
];

/// What went wrong when there is no upstream status to count.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Failure {
    /// No response head within the route's timeout.
    Timeout,
    /// No instance accepted a connection.
    ConnectError,
    /// The connection broke after the request was sent.
    Error,
    /// No instance was known.
    Unavailable,
}

struct ServiceMetrics {
    duration: Histogram,
    statuses: Vec<(u16, Counter)>,
    failures: [Counter; 4],
}

/// Handles for every service of the route table.
pub(crate) struct UpstreamMetrics {
    services: HashMap<Arc<str>, ServiceMetrics>,
}

impl UpstreamMetrics {
    pub(crate) fn new(services: &[Arc<str>]) -> Self {
        // Handles bind to the recorder installed when they are made: install it first.
        let _ = bazaar_runtime::metrics::handle();
        let services = services
            .iter()
            .map(|s| {
                let service = SharedString::from(s.clone());
                let counter = |status: &'static str| {
                    metrics::counter!(REQUESTS, "service" => service.clone(), "status" => status)
                };
                let m = ServiceMetrics {
                    duration: metrics::histogram!(DURATION, "service" => service.clone()),
                    statuses: COMMON.iter().map(|(code, label)| (*code, counter(label))).collect(),
                    failures: [counter("timeout"), counter("connect_error"), counter("error"), counter("unavailable")],
                };
                (s.clone(), m)
            })
            .collect();
        Self { services }
    }

    /// An upstream answered with `status` after `elapsed`.
    pub(crate) fn answered(&self, service: &Arc<str>, status: StatusCode, elapsed: Duration) {
        match self.services.get(service) {
            Some(m) => {
                m.duration.record(elapsed.as_secs_f64());
                match m.statuses.iter().find(|(code, _)| *code == status.as_u16()) {
                    Some((_, counter)) => counter.increment(1),
                    None => slow_path(service, SharedString::from(status.as_str().to_owned())),
                }
            }
            None => {
                metrics::histogram!(DURATION, "service" => SharedString::from(service.clone()))
                    .record(elapsed.as_secs_f64());
                slow_path(service, SharedString::from(status.as_str().to_owned()));
            }
        }
    }

    /// An upstream request failed without a status.
    pub(crate) fn failed(&self, service: &Arc<str>, failure: Failure) {
        let (index, label) = match failure {
            Failure::Timeout => (0, "timeout"),
            Failure::ConnectError => (1, "connect_error"),
            Failure::Error => (2, "error"),
            Failure::Unavailable => (3, "unavailable"),
        };
        match self.services.get(service) {
            Some(m) => m.failures[index].increment(1),
            None => slow_path(service, SharedString::from(label)),
        }
    }
}

fn slow_path(service: &Arc<str>, status: SharedString) {
    metrics::counter!(REQUESTS, "service" => SharedString::from(service.clone()), "status" => status).increment(1);
}
