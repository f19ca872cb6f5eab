//! The in-memory table of instances and their leases.
//!
//! One mutex guards everything: every operation is a few map lookups, far cheaper than the
//! HTTP around it, and one lock makes the index and the sets change together. Time is passed
//! in (`now`) so that lease rules are tested without sleeping.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
    time::{Duration, Instant},
};

use bazaar_discovery::{Instance, RegisteredInstance};
use bazaar_runtime::time::{now_micros, rfc3339_micros};
use tokio::sync::watch;

/// Instances held at most; a registration beyond it is refused rather than letting a runaway
/// client exhaust memory.
pub const MAX_INSTANCES: usize = 10_000;

/// Emptied services are remembered (to keep their index) until there are this many services.
const MAX_SERVICES: usize = 1_024;

/// The registry's state.
#[derive(Debug)]
pub struct Table {
    inner: Mutex<Inner>,
    /// Carries the global index; long-polls wait on it and then compare their service's index.
    changes: watch::Sender<u64>,
    ttl: Duration,
}

#[derive(Debug)]
struct Inner {
    /// Bumped on every change. Seeded from the clock, so a restarted registry's indexes are
    /// above the old one's and a client's stale index can never look current.
    index: u64,
    services: HashMap<String, Service>,
    count: usize,
}

#[derive(Debug, Default)]
struct Service {
    /// The global index of this service's last change.
    index: u64,
    leases: BTreeMap<String, Lease>,
}

#[derive(Debug)]
struct Lease {
    instance: Instance,
    registered_at: i64,
    last_heartbeat_at: i64,
    expires_at: Instant,
}

/// What a registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// A new instance.
    Added,
    /// A known instance whose fields changed.
    Replaced,
    /// A known instance, unchanged: only its lease was renewed.
    Renewed,
}

/// Why a registration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterError {
    /// [`MAX_INSTANCES`] are registered already.
    Full,
}

impl Table {
    /// An empty table handing out leases of `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self::starting_at(ttl, u64::try_from(now_micros()).unwrap_or(1))
    }

    /// An empty table whose index starts at `index`.
    pub fn starting_at(ttl: Duration, index: u64) -> Self {
        let (changes, _) = watch::channel(index);
        Table {
            inner: Mutex::new(Inner {
                index,
                services: HashMap::new(),
                count: 0,
            }),
            changes,
            ttl,
        }
    }

    /// The lease TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Wakes on every change (the value is the global index). Subscribe before reading the
    /// state you compare against, so that no change can slip in between unnoticed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Registers or replaces `instance` and (re)starts its lease.
    pub fn register(&self, instance: Instance, now: Instant) -> Result<Registered, RegisterError> {
        let wall = now_micros();
        let expires_at = self.expiry(now);
        let name = instance.service.clone();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let full = inner.count >= MAX_INSTANCES;
        let service = inner.services.entry(name.clone()).or_default();
        let fresh = |instance| Lease {
            instance,
            registered_at: wall,
            last_heartbeat_at: wall,
            expires_at,
        };
        let outcome = match service.leases.get_mut(&instance.instance_id) {
            Some(lease) if lease.expires_at > now && lease.instance == instance => {
                lease.last_heartbeat_at = wall;
                lease.expires_at = expires_at;
                return Ok(Registered::Renewed);
            }
            Some(lease) => {
                *lease = fresh(instance);
                Registered::Replaced
            }
            None if full => return Err(RegisterError::Full),
            None => {
                service
                    .leases
                    .insert(instance.instance_id.clone(), fresh(instance));
                inner.count += 1;
                Registered::Added
            }
        };
        self.bump(inner, &name);
        Ok(outcome)
    }

    /// Renews a lease; `false` if the instance is unknown or its lease has expired (it is then
    /// removed, and the caller registers again).
    pub fn heartbeat(&self, service: &str, instance_id: &str, now: Instant) -> bool {
        let expires_at = self.expiry(now);
        let mut inner = self.lock();
        let Some(lease) = inner
            .services
            .get_mut(service)
            .and_then(|s| s.leases.get_mut(instance_id))
        else {
            return false;
        };
        if lease.expires_at <= now {
            self.remove(&mut inner, service, instance_id);
            tracing::info!(service, instance_id, "Lease expired; instance removed.");
            return false;
        }
        lease.expires_at = expires_at;
        lease.last_heartbeat_at = now_micros();
        true
    }

    /// Removes an instance; `false` if it was not registered.
    pub fn deregister(&self, service: &str, instance_id: &str) -> bool {
        let mut inner = self.lock();
        self.remove(&mut inner, service, instance_id)
    }

    /// The live instances of `service` (sorted by id) and the index of that set.
    pub fn service(&self, service: &str, now: Instant) -> (u64, Vec<Instance>) {
        let mut inner = self.lock();
        self.expire(&mut inner, now, Some(service));
        match inner.services.get(service) {
            Some(s) => (
                s.index,
                s.leases.values().map(|l| l.instance.clone()).collect(),
            ),
            None => (0, Vec::new()),
        }
    }

    /// Every live instance with its lease times (sorted by service, then id) and the global
    /// index.
    pub fn all(&self, now: Instant) -> (u64, Vec<RegisteredInstance>) {
        let mut inner = self.lock();
        self.expire(&mut inner, now, None);
        let mut names: Vec<&String> = inner.services.keys().collect();
        names.sort();
        let instances = names
            .into_iter()
            .flat_map(|name| inner.services[name].leases.values())
            .map(|l| RegisteredInstance {
                instance: l.instance.clone(),
                registered_at: rfc3339_micros(l.registered_at),
                last_heartbeat_at: rfc3339_micros(l.last_heartbeat_at),
            })
            .collect();
        (inner.index, instances)
    }

    /// Removes every instance whose lease has expired by `now`; how many were removed.
    pub fn reap(&self, now: Instant) -> usize {
        let mut inner = self.lock();
        self.expire(&mut inner, now, None)
    }

    fn expire(&self, inner: &mut Inner, now: Instant, only: Option<&str>) -> usize {
        let expired: Vec<(String, String)> = inner
            .services
            .iter()
            .filter(|(name, _)| only.is_none_or(|o| o == name.as_str()))
            .flat_map(|(name, s)| {
                s.leases
                    .iter()
                    .filter(|(_, l)| l.expires_at <= now)
                    .map(move |(id, _)| (name.clone(), id.clone()))
            })
            .collect();
        for (service, instance_id) in &expired {
            self.remove(inner, service, instance_id);
            tracing::info!(service = %service, instance_id = %instance_id, "Lease expired; instance removed.");
        }
        expired.len()
    }

    fn remove(&self, inner: &mut Inner, service: &str, instance_id: &str) -> bool {
        let removed = inner
            .services
            .get_mut(service)
            .and_then(|s| s.leases.remove(instance_id))
            .is_some();
        if removed {
            inner.count -= 1;
            self.bump(inner, service);
            if inner.services.len() > MAX_SERVICES {
                inner.services.retain(|_, s| !s.leases.is_empty());
            }
        }
        removed
    }

    fn bump(&self, inner: &mut Inner, service: &str) {
        inner.index += 1;
        if let Some(s) = inner.services.get_mut(service) {
            s.index = inner.index;
        }
        self.changes.send_replace(inner.index);
    }

    fn expiry(&self, now: Instant) -> Instant {
        now.checked_add(self.ttl).unwrap_or(now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(10);

    fn table() -> Table {
        Table::starting_at(TTL, 100)
    }

    fn catalog(id: &str) -> Instance {
        Instance::new("catalog", id, "127.0.0.1:1")
    }

    #[test]
    fn a_new_registration_bumps_the_index_and_a_repeat_does_not() {
        let t = table();
        let now = Instant::now();
        assert_eq!(t.service("catalog", now), (0, vec![]));
        assert_eq!(t.register(catalog("b"), now), Ok(Registered::Added));
        assert_eq!(t.register(catalog("a"), now), Ok(Registered::Added));
        let (index, set) = t.service("catalog", now);
        assert_eq!(index, 102);
        assert_eq!(
            set.iter()
                .map(|i| i.instance_id.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(t.register(catalog("a"), now), Ok(Registered::Renewed));
        assert_eq!(t.service("catalog", now).0, 102);
    }

    #[test]
    fn a_changed_registration_replaces_the_instance() {
        let t = table();
        let now = Instant::now();
        t.register(catalog("a"), now).unwrap();
        let mut moved = catalog("a");
        moved.http_addr = "127.0.0.1:2".into();
        assert_eq!(t.register(moved.clone(), now), Ok(Registered::Replaced));
        assert_eq!(t.service("catalog", now), (102, vec![moved]));
    }

    #[test]
    fn heartbeats_extend_the_lease_without_bumping_the_index() {
        let t = table();
        let start = Instant::now();
        t.register(catalog("a"), start).unwrap();
        let later = start + TTL - Duration::from_millis(1);
        assert!(t.heartbeat("catalog", "a", later));
        assert_eq!(t.reap(start + TTL + Duration::from_millis(1)), 0);
        assert_eq!(t.service("catalog", later).0, 101);
        assert_eq!(t.reap(later + TTL), 1);
        assert_eq!(t.service("catalog", later + TTL), (102, vec![]));
    }

    #[test]
    fn an_expired_lease_refuses_heartbeats_and_disappears() {
        let t = table();
        let start = Instant::now();
        t.register(catalog("a"), start).unwrap();
        assert!(!t.heartbeat("catalog", "a", start + TTL));
        assert_eq!(t.service("catalog", start + TTL), (102, vec![]));
        assert!(!t.heartbeat("catalog", "a", start));
        assert!(!t.heartbeat("nope", "a", start));
    }

    #[test]
    fn listing_drops_expired_instances_before_the_reaper_runs() {
        let t = table();
        let start = Instant::now();
        t.register(catalog("a"), start).unwrap();
        t.register(catalog("b"), start + Duration::from_secs(5))
            .unwrap();
        let (_, set) = t.service("catalog", start + TTL);
        assert_eq!(set, vec![catalog("b")]);
        assert_eq!(t.all(start + TTL).1.len(), 1);
    }

    #[test]
    fn deregistering_bumps_only_when_something_was_removed() {
        let t = table();
        let now = Instant::now();
        t.register(catalog("a"), now).unwrap();
        assert!(!t.deregister("catalog", "zzz"));
        assert_eq!(t.service("catalog", now).0, 101);
        assert!(t.deregister("catalog", "a"));
        assert_eq!(t.service("catalog", now), (102, vec![]));
        assert!(!t.deregister("catalog", "a"));
    }

    #[test]
    fn every_change_wakes_subscribers() {
        let t = table();
        let mut rx = t.subscribe();
        assert!(!rx.has_changed().unwrap());
        t.register(catalog("a"), Instant::now()).unwrap();
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), 101);
    }

    #[test]
    fn all_lists_every_service_sorted_with_lease_times() {
        let t = table();
        let now = Instant::now();
        t.register(Instance::new("identity", "z", "127.0.0.1:3"), now)
            .unwrap();
        t.register(catalog("b"), now).unwrap();
        t.register(catalog("a"), now).unwrap();
        let (index, all) = t.all(now);
        assert_eq!(index, 103);
        let keys: Vec<(&str, &str)> = all
            .iter()
            .map(|r| (r.instance.service.as_str(), r.instance.instance_id.as_str()))
            .collect();
        assert_eq!(
            keys,
            [("catalog", "a"), ("catalog", "b"), ("identity", "z")]
        );
        assert!(all[0].registered_at.ends_with('Z'));
    }

    #[test]
    fn a_full_table_refuses_new_instances_but_renews_known_ones() {
        let t = table();
        let now = Instant::now();
        for i in 0..MAX_INSTANCES {
            t.register(catalog(&i.to_string()), now).unwrap();
        }
        assert_eq!(
            t.register(catalog("one-more"), now),
            Err(RegisterError::Full)
        );
        assert_eq!(t.register(catalog("0"), now), Ok(Registered::Renewed));
    }
}
