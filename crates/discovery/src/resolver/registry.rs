//! Resolving through the registry: one long-poll per service.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::time::Instant;

use super::{
    feed::{publish, Feed, Publisher},
    ResolveFuture, Resolver,
};
use crate::{Instance, RegistryClient};

/// How long each long-poll asks the registry to hold the answer when nothing changes.
pub const WATCH_WAIT: Duration = Duration::from_secs(30);

/// After an outage, how long instances known before it are kept even if the registry no longer
/// lists them. A restarted registry starts empty and is refilled as instances heartbeat, get
/// 404 and register again — within one heartbeat interval (a third of the 10 s default TTL);
/// without this grace every caller would see an empty or partial set meanwhile.
pub const RESTART_GRACE: Duration = Duration::from_secs(10);

/// Retry delays while the registry is unreachable: quick at first (it may only be restarting),
/// then capped so a registry outage costs little.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Resolves services through the registry.
///
/// For each service asked for, a background task long-polls the registry (`watch`, 30 s) and
/// swaps the cached set when it changes. While the registry is down it keeps the last known
/// set — the instances are most likely still there — and retries with backoff (100 ms → 2 s).
/// When the registry answers again, instances it does not list (yet) are kept for
/// [`RESTART_GRACE`], the time a restarted registry needs to be refilled. Dropping the
/// resolver stops the tasks.
pub struct RegistryResolver {
    client: RegistryClient,
    grace: Duration,
    feeds: Mutex<HashMap<String, Arc<Feed>>>,
}

impl std::fmt::Debug for RegistryResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryResolver")
            .field("registry", &self.client.base_url())
            .finish_non_exhaustive()
    }
}

impl RegistryResolver {
    /// A resolver asking the registry behind `client`.
    pub fn new(client: RegistryClient) -> Arc<Self> {
        Self::with_restart_grace(client, RESTART_GRACE)
    }

    /// Like [`RegistryResolver::new`] with another [`RESTART_GRACE`] (match it to the lease
    /// TTL when that is not the default).
    pub fn with_restart_grace(client: RegistryClient, grace: Duration) -> Arc<Self> {
        Arc::new(RegistryResolver {
            client,
            grace,
            feeds: Mutex::new(HashMap::new()),
        })
    }

    fn feed(&self, service: &str) -> Arc<Feed> {
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(feed) = feeds.get(service) {
            return Arc::clone(feed);
        }
        let (client, name, grace) = (self.client.clone(), service.to_owned(), self.grace);
        let feed = Arc::new(Feed::spawn(move |tx| follow(client, name, grace, tx)));
        feeds.insert(service.to_owned(), Arc::clone(&feed));
        feed
    }
}

impl Resolver for RegistryResolver {
    fn resolve<'a>(&'a self, service: &'a str) -> ResolveFuture<'a> {
        Box::pin(async move { self.feed(service).current().await })
    }
}

/// Instances known before an outage, kept until `until` while the registry is refilled.
struct Grace {
    until: Instant,
    known: Arc<[Instance]>,
}

/// Follows the instance set of `service` for as long as the feed lives.
async fn follow(client: RegistryClient, service: String, grace_period: Duration, tx: Publisher) {
    let mut index: Option<u64> = None;
    let mut backoff = BACKOFF_MIN;
    let mut outage = false;
    let mut grace: Option<Grace> = None;
    loop {
        let answer = match index {
            None => client.list(&service).await,
            Some(i) => {
                // During the grace a watch must come back when it ends, to drop what stayed
                // unlisted.
                let wait = grace.as_ref().map_or(WATCH_WAIT, |g| {
                    g.until
                        .saturating_duration_since(Instant::now())
                        .clamp(BACKOFF_MIN, WATCH_WAIT)
                });
                client.watch(&service, i, wait).await
            }
        };
        match answer {
            Ok((new_index, instances)) => {
                if outage {
                    tracing::info!(service = %service, "Registry reachable again.");
                    outage = false;
                    let known = tx.borrow().clone().unwrap_or_else(|| Arc::from(Vec::new()));
                    if !known.is_empty() {
                        grace = Some(Grace {
                            until: Instant::now() + grace_period,
                            known,
                        });
                    }
                }
                backoff = BACKOFF_MIN;
                let instances = match &grace {
                    Some(g) if Instant::now() < g.until => merge(instances, &g.known),
                    _ => {
                        grace = None;
                        instances
                    }
                };
                let count = instances.len();
                if publish(&tx, instances) {
                    tracing::debug!(service = %service, instances = count, index = new_index, "Instance set changed.");
                }
                // A registry that answers at once without a change (a proxy that ignores
                // long-polling) would otherwise make this loop spin.
                if index == Some(new_index) {
                    tokio::time::sleep(BACKOFF_MIN).await;
                }
                index = Some(new_index);
            }
            Err(err) => {
                if outage {
                    tracing::debug!(service = %service, error = %err, "Registry still unavailable.");
                } else {
                    tracing::warn!(
                        service = %service,
                        error = %err,
                        "Cannot watch the registry; keeping the last known instances."
                    );
                    outage = true;
                }
                // The registry may come back as a new process whose indexes mean nothing to
                // the old ones: start over with a plain list.
                index = None;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// `listed` plus the `known` instances it lacks (by id; the registry's version wins), sorted
/// by id like the registry's answers.
fn merge(listed: Vec<Instance>, known: &[Instance]) -> Vec<Instance> {
    let mut by_id: BTreeMap<String, Instance> = known
        .iter()
        .map(|i| (i.instance_id.clone(), i.clone()))
        .collect();
    by_id.extend(listed.into_iter().map(|i| (i.instance_id.clone(), i)));
    by_id.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_known_instances_and_prefers_the_registry_version() {
        let mut moved = Instance::new("s", "b", "127.0.0.1:3");
        moved.version = "2".into();
        let known = [
            Instance::new("s", "a", "127.0.0.1:1"),
            Instance::new("s", "b", "127.0.0.1:2"),
        ];
        let merged = merge(
            vec![moved.clone(), Instance::new("s", "c", "127.0.0.1:4")],
            &known,
        );
        let ids: Vec<&str> = merged.iter().map(|i| i.instance_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(merged[1], moved);
    }
}
