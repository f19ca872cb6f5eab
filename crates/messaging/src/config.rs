//! How a [`crate::Bus`] delivers: backend, retries, and what a consumer subscribes to.

use std::time::Duration;

use rand::Rng;

/// One consumer of one producer's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    /// Unique within the consuming service, e.g. `inventory.products` (the key of its
    /// cursor, inbox records, dead letters and JetStream durable consumer).
    pub name: &'static str,
    /// The producing service, e.g. `catalog`.
    pub producer: &'static str,
    /// The event types handled; other events of the producer are skipped. Empty = all.
    pub types: &'static [&'static str],
}

/// Retry timing of a failing handler: exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (the first included) before an event is dead-lettered; at least 1.
    pub max_attempts: u32,
    /// The delay after the first failure (before jitter).
    pub base: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The ceiling of the delay after failed attempt `attempt` (1-based):
    /// `min(max, base · 2^(attempt-1))`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The delay after failed attempt `attempt`: uniformly random in
    /// `[ceiling/2, ceiling]` ("equal jitter": never zero, never in lockstep with a peer).
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        let spread = u64::try_from((ceiling - half).as_micros()).unwrap_or(u64::MAX);
        let jitter = if spread == 0 {
            0
        } else {
            rand::thread_rng().gen_range(0..=spread)
        };
        half + Duration::from_micros(jitter)
    }

    /// The number of attempts, at least 1.
    pub fn attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }
}

/// How a [`crate::Bus`] runs.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// `None` or `"feeds"`: the embedded HTTP feeds. `nats://host:port`: NATS JetStream.
    pub url: Option<String>,
    /// Retries of failing handlers.
    pub retry: RetryPolicy,
    /// How often the relay looks for unsent events when nothing woke it (a crash between a
    /// commit and [`crate::Bus::notify`] delays an event by at most this).
    pub relay_poll: Duration,
    /// How long a feed consumer's long-poll waits at the producer (at most 30 s).
    pub feed_wait: Duration,
    /// Events per feed page a consumer asks for (1–500).
    pub feed_batch: u32,
    /// The longest pause between attempts to reach a producer that is down.
    pub unreachable_backoff_max: Duration,
    /// JetStream: how long a delivered, unacknowledged message waits before redelivery.
    pub ack_wait: Duration,
    /// JetStream: messages a consumer may hold unacknowledged. 1 keeps each subscription in
    /// stream order (a failing event holds back the ones after it, as with feeds).
    pub max_ack_pending: i64,
    /// JetStream: the stream's duplicate window (at least 2 minutes).
    pub duplicate_window: Duration,
    /// JetStream: a prefix that keeps this deployment's streams, subjects and consumers apart
    /// from others on the same server (`<ns>-<service>` in their names), e.g. several test
    /// shops on one NATS. `None` in production.
    pub namespace: Option<String>,
    /// This process's instance id. Feeds: replicas of a service share each subscription's
    /// cursor, and only the instance holding the subscription's lease reads the feed.
    pub instance: String,
    /// Feeds: how long a subscription lease lasts without renewal (it is renewed before every
    /// page, so at least the long-poll wait plus the time to handle a page).
    pub lease_ttl: Duration,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            url: None,
            retry: RetryPolicy::default(),
            relay_poll: Duration::from_millis(200),
            feed_wait: Duration::from_secs(25),
            feed_batch: 100,
            unreachable_backoff_max: Duration::from_secs(5),
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 1,
            duplicate_window: Duration::from_secs(120),
            namespace: None,
            instance: format!(
                "pid-{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ),
            lease_ttl: Duration::from_secs(45),
        }
    }
}

impl BusConfig {
    /// The default configuration with the backend named by `url` (`None`, `"feeds"` or
    /// `nats://…`), e.g. from `--bus` / `BAZAAR_BUS`.
    pub fn with_url(url: Option<String>) -> Self {
        BusConfig {
            url,
            ..BusConfig::default()
        }
    }

    /// The name a service's stream, subjects and consumers carry on the broker:
    /// `<namespace>-<service>`, or the service's own name without a namespace.
    pub fn broker_name(&self, service: &str) -> String {
        match self.namespace.as_deref().filter(|n| !n.is_empty()) {
            Some(ns) => format!("{ns}-{service}"),
            None => service.to_owned(),
        }
    }

    /// The NATS URL, if this configuration names the JetStream backend.
    pub fn nats_url(&self) -> Option<&str> {
        self.url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty() && *u != "feeds")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn backoff_doubles_up_to_the_ceiling() {
        let p = RetryPolicy::default();
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(200));
        assert_eq!(p.ceiling(4), Duration::from_millis(800));
        assert_eq!(p.ceiling(10), Duration::from_secs(5));
        assert_eq!(p.ceiling(200), Duration::from_secs(5));
    }

    #[test]
    fn feeds_is_the_default_backend() {
        assert_eq!(BusConfig::default().nats_url(), None);
        assert_eq!(BusConfig::with_url(Some("feeds".into())).nats_url(), None);
        assert_eq!(
            BusConfig::with_url(Some("nats://127.0.0.1:4222".into())).nats_url(),
            Some("nats://127.0.0.1:4222")
        );
    }

    proptest! {
        #[test]
        fn jittered_delays_stay_between_half_and_the_ceiling(attempt in 0u32..100, base_ms in 0u64..1000, max_ms in 0u64..10_000) {
            let p = RetryPolicy { max_attempts: 8, base: Duration::from_millis(base_ms), max: Duration::from_millis(max_ms) };
            let d = p.delay(attempt);
            prop_assert!(d <= p.ceiling(attempt));
            prop_assert!(d >= p.ceiling(attempt) / 2);
        }
    }
}
