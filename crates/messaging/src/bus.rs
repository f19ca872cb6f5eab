//! The [`Bus`]: one per service, owning its relay, its consumers and their HTTP routes.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use anyhow::Context as _;
use bazaar_discovery::Resolver;
use bazaar_store::Db;
use tokio::sync::{watch, Notify};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    config::{BusConfig, Subscription},
    handler::Handler,
    nats::Nats,
    state::MessagingSummary,
};

/// A service's connection to the event backbone: relays its outbox, runs its consumers and
/// serves its feed and dead-letter admin routes. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("service", &self.inner.service)
            .field("backend", &self.inner.backend_name())
            .finish_non_exhaustive()
    }
}

/// What the tasks and routes of one bus share.
pub(crate) struct Inner {
    /// The service this bus belongs to (producer of its outbox, owner of its consumers).
    pub(crate) service: &'static str,
    pub(crate) db: Db,
    pub(crate) resolver: Arc<dyn Resolver>,
    pub(crate) config: BusConfig,
    pub(crate) stop: CancellationToken,
    /// Wakes the relay after a commit that published.
    pub(crate) relay_wake: Notify,
    /// The largest feed position the relay has seen; wakes long-polling feed requests.
    pub(crate) head: watch::Sender<i64>,
    /// The handler of each subscription, for consumers and for redrives.
    pub(crate) handlers: RwLock<HashMap<&'static str, Arc<dyn Handler>>>,
    pub(crate) http: reqwest::Client,
    pub(crate) nats: Option<Nats>,
    pub(crate) tasks: TaskTracker,
    /// The producer of each subscription.
    pub(crate) producers: RwLock<HashMap<&'static str, &'static str>>,
    /// Feeds: events known to wait for each subscription this instance reads (the producer's
    /// head minus the cursor, as of the last page). Absent while another replica holds it.
    pub(crate) lags: std::sync::Mutex<HashMap<&'static str, i64>>,
}

impl Inner {
    /// Records (or, with `None`, forgets) what this instance knows of a subscription's lag.
    pub(crate) fn set_lag(&self, subscription: &'static str, lag: Option<i64>) {
        let mut lags = self.lags.lock().unwrap_or_else(|e| e.into_inner());
        match lag {
            Some(n) => {
                lags.insert(subscription, n.max(0));
            }
            None => {
                lags.remove(subscription);
            }
        }
    }
}

impl Inner {
    pub(crate) fn handler(&self, subscription: &str) -> Option<Arc<dyn Handler>> {
        self.handlers
            .read()
            .ok()
            .and_then(|h| h.get(subscription).cloned())
    }

    fn backend_name(&self) -> &'static str {
        if self.nats.is_some() {
            "nats"
        } else {
            "feeds"
        }
    }
}

impl Bus {
    /// Starts the bus of `service`: checks the configuration, connects to NATS (creating the
    /// service's stream) when configured, and starts the outbox relay. Every task of the bus
    /// stops when `stop` is cancelled ([`Bus::stopped`] waits for them).
    pub async fn start(
        service: &'static str,
        db: Db,
        resolver: Arc<dyn Resolver>,
        config: BusConfig,
        stop: CancellationToken,
    ) -> anyhow::Result<Bus> {
        anyhow::ensure!(
            !service.is_empty()
                && service
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "the service name {service:?} must be letters, digits, '-' or '_'"
        );
        anyhow::ensure!(
            (1..=crate::feed::MAX_FEED_LIMIT).contains(&config.feed_batch),
            "feed_batch must be 1–{}",
            crate::feed::MAX_FEED_LIMIT
        );
        let nats = match config.nats_url() {
            Some(url) => Some(
                Nats::connect(url, service, &config)
                    .await
                    .with_context(|| format!("start the JetStream backend of {service}"))?,
            ),
            None => None,
        };
        let head = crate::relay::read_head(&db)
            .await
            .context("read the outbox head")?;
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(2))
            // Feeds are service-to-service calls: never through an environment's HTTP proxy.
            .no_proxy()
            .build()
            .context("build the feed HTTP client")?;
        let inner = Arc::new(Inner {
            service,
            db,
            resolver,
            config,
            stop,
            relay_wake: Notify::new(),
            head: watch::channel(head).0,
            handlers: RwLock::new(HashMap::new()),
            producers: RwLock::new(HashMap::new()),
            lags: std::sync::Mutex::new(HashMap::new()),
            http,
            nats,
            tasks: TaskTracker::new(),
        });
        let relay = inner.clone();
        inner.tasks.spawn(crate::relay::run(relay));
        tracing::info!(
            service,
            backend = inner.backend_name(),
            "Event bus started."
        );
        Ok(Bus { inner })
    }

    /// Wakes the relay: call after committing a transaction that [`crate::publish`]ed. (Not
    /// calling it only delays delivery until the relay's next poll.)
    pub fn notify(&self) {
        self.inner.relay_wake.notify_one();
    }

    /// Starts consuming `sub` with `handler` (a task that runs until the bus stops). A second
    /// subscription with the same name, or one naming an impossible event type, is refused
    /// with an error log.
    pub fn subscribe<H: Handler>(&self, sub: Subscription, handler: H) {
        if let Some(bad) = sub.types.iter().find(|t| !crate::feed::is_type_name(t)) {
            tracing::error!(
                subscription = sub.name,
                event_type = %bad,
                "Not an event type name ([A-Za-z0-9._-], at most 200 characters); not subscribing."
            );
            return;
        }
        let handler: Arc<dyn Handler> = Arc::new(handler);
        match self.inner.handlers.write() {
            Ok(mut handlers) => {
                if handlers.contains_key(sub.name) {
                    tracing::error!(
                        subscription = sub.name,
                        "A subscription with this name already exists; ignoring the second one."
                    );
                    return;
                }
                handlers.insert(sub.name, handler.clone());
                if let Ok(mut producers) = self.inner.producers.write() {
                    producers.insert(sub.name, sub.producer);
                }
            }
            Err(_) => {
                tracing::error!(
                    subscription = sub.name,
                    "The handler registry is poisoned; not subscribing."
                );
                return;
            }
        }
        let inner = self.inner.clone();
        if inner.nats.is_some() {
            self.inner
                .tasks
                .spawn(crate::nats::run_consumer(inner, sub, handler));
        } else {
            self.inner
                .tasks
                .spawn(crate::consumer::run_feed_consumer(inner, sub, handler));
        }
    }

    /// The bus's HTTP routes, to merge into the service's router inside its `ServiceStack`:
    /// `GET /internal/events` (this service's feed), and, admin token required,
    /// `GET /admin/dead-letters`, `POST /admin/dead-letters/{service}/{id}/redrive` and
    /// `GET /admin/messaging` (the [`MessagingSummary`]).
    pub fn routes(&self) -> axum::Router {
        use axum::routing::{get, post};
        axum::Router::new()
            .route("/internal/events", get(crate::feed::serve))
            .route("/admin/messaging", get(crate::state::serve))
            .route("/admin/dead-letters", get(crate::admin::list))
            .route(
                "/admin/dead-letters/{service}/{id}/redrive",
                post(crate::admin::redrive),
            )
            .with_state(self.inner.clone())
    }

    /// What the service's messaging tables hold (unsent outbox rows, inbox, dead letters,
    /// subscriptions and their feed cursors), read through `conn`: pass the service's
    /// [`crate::read_snapshot`] transaction to have it agree with the rest of a state answer.
    /// The one builder of the `"messaging"` part of every service's `GET /admin/state`.
    pub async fn state_summary(
        &self,
        conn: &mut sqlx::AnyConnection,
    ) -> Result<MessagingSummary, sqlx::Error> {
        crate::state::summary(&self.inner, conn).await
    }

    /// The service this bus belongs to.
    pub fn service(&self) -> &'static str {
        self.inner.service
    }

    /// Waits until every task of the bus has finished (after `stop` was cancelled).
    pub async fn stopped(&self) {
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}
