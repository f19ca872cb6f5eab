//! The messaging metrics (Prometheus names, labels `service` and `subscription`).

/// Unsent outbox rows.
pub(crate) fn outbox_backlog(service: &'static str, rows: i64) {
    metrics::gauge!("bazaar_outbox_backlog", "service" => service).set(as_f64(rows));
}

/// Age of the oldest unsent outbox row (0 when none).
pub(crate) fn outbox_oldest_age(service: &'static str, seconds: f64) {
    metrics::gauge!("bazaar_outbox_oldest_unsent_age_seconds", "service" => service).set(seconds);
}

/// Events a subscription has still to see (feeds: head − cursor; JetStream: pending).
pub(crate) fn consumer_lag(service: &'static str, subscription: &'static str, events: i64) {
    metrics::gauge!("bazaar_consumer_lag", "service" => service, "subscription" => subscription)
        .set(as_f64(events.max(0)));
}

/// Dead letters of a subscription with status `dead`.
pub(crate) fn dead_letters(service: &'static str, subscription: &str, count: i64) {
    metrics::gauge!(
        "bazaar_dead_letters",
        "service" => service,
        "subscription" => subscription.to_owned()
    )
    .set(as_f64(count));
}

/// What happened to one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The handler ran and its transaction committed.
    Processed,
    /// Already in the inbox: acknowledged without running the handler.
    Duplicate,
    /// The handler failed; the event will be tried again.
    Retried,
    /// Stored as a dead letter.
    DeadLettered,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Processed => "processed",
            Outcome::Duplicate => "duplicate",
            Outcome::Retried => "retried",
            Outcome::DeadLettered => "dead_lettered",
        }
    }
}

/// Counts one delivery outcome.
pub(crate) fn handled(service: &'static str, subscription: &str, outcome: Outcome) {
    metrics::counter!(
        "bazaar_events_handled_total",
        "service" => service,
        "subscription" => subscription.to_owned(),
        "outcome" => outcome.label()
    )
    .increment(1);
}

#[allow(clippy::cast_precision_loss)]
fn as_f64(n: i64) -> f64 {
    n as f64
}
