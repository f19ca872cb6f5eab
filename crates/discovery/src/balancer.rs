//! Choosing an instance: power-of-two-choices over in-flight requests, with passive ejection.
//!
//! Two random candidates are compared and the one with fewer requests in flight wins (ties go
//! to the lower latency average). This needs no coordination, adapts at once to a slow
//! instance (its requests pile up, so it loses comparisons) and avoids the herd behaviour of
//! always picking the global minimum. Instances that fail repeatedly, or refuse connections,
//! are left out for [`EJECTION_TIME`].

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering},
        Arc, RwLock,
    },
    time::{Duration, Instant},
};

use rand::Rng;

use crate::Instance;

/// Consecutive failures after which an instance is ejected.
pub const FAILURES_TO_EJECT: u32 = 3;

/// How long an ejected instance is left out.
pub const EJECTION_TIME: Duration = Duration::from_secs(5);

/// Weight of a new latency sample in the moving average, in tenths: reacts within a few
/// requests without flapping on one outlier.
const EWMA_NEW_TENTHS: u64 = 3;

/// Per-service endpoint tables are pruned of vanished instances beyond this slack.
const PRUNE_SLACK: usize = 16;

/// Power-of-two-choices over in-flight requests, with passive ejection of failing instances.
///
/// One per process (or per upstream set), shared as `Arc<Balancer>`: its statistics are what
/// make it balance. Instances are known by `(service, instance_id)`.
pub struct Balancer {
    services: RwLock<HashMap<String, HashMap<String, Arc<Endpoint>>>>,
    epoch: Instant,
}

/// What the balancer knows about one instance.
#[derive(Debug)]
struct Endpoint {
    in_flight: AtomicUsize,
    /// Microseconds; 0 until the first success.
    ewma_micros: AtomicU64,
    failures: AtomicU32,
    /// Milliseconds since the balancer's epoch; 0 when never ejected.
    ejected_until_ms: AtomicU64,
    epoch: Instant,
}

impl Endpoint {
    fn new(epoch: Instant) -> Self {
        Endpoint {
            in_flight: AtomicUsize::new(0),
            ewma_micros: AtomicU64::new(0),
            failures: AtomicU32::new(0),
            ejected_until_ms: AtomicU64::new(0),
            epoch,
        }
    }

    fn now_ms(&self) -> u64 {
        // +1 so that "now" is never 0, the "never ejected" value.
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    fn is_ejected(&self, now_ms: u64) -> bool {
        self.ejected_until_ms.load(Ordering::Relaxed) > now_ms
    }

    /// Ejects for [`EJECTION_TIME`]; `true` if it was not ejected before.
    fn eject(&self) -> bool {
        let now = self.now_ms();
        let until =
            now.saturating_add(u64::try_from(EJECTION_TIME.as_millis()).unwrap_or(u64::MAX));
        self.ejected_until_ms.swap(until, Ordering::Relaxed) <= now
    }
}

impl Default for Balancer {
    fn default() -> Self {
        Balancer {
            services: RwLock::new(HashMap::new()),
            epoch: Instant::now(),
        }
    }
}

impl std::fmt::Debug for Balancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let services = self.services.read().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("Balancer")
            .field("services", &services.len())
            .finish_non_exhaustive()
    }
}

impl Balancer {
    /// A balancer that knows nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Picks one of `instances`: two random distinct candidates among the non-ejected ones
    /// (all of them if every one is ejected), the one with fewer requests in flight (ties: lower
    /// latency average). `None` only if `instances` is empty.
    pub fn pick(&self, instances: &[Instance]) -> Option<Pick> {
        self.pick_excluding(instances, &[])
    }

    /// Like [`Balancer::pick`], never choosing an instance whose id is in `exclude` (a retry
    /// avoiding the instance that just failed). `None` if every instance is excluded.
    pub fn pick_excluding(&self, instances: &[Instance], exclude: &[String]) -> Option<Pick> {
        let allowed: Vec<&Instance> = instances
            .iter()
            .filter(|i| !exclude.contains(&i.instance_id))
            .collect();
        if allowed.is_empty() {
            return None;
        }
        let endpoints = self.endpoints(instances, &allowed);
        let now_ms = endpoints.first().map_or(1, |e| e.now_ms());
        let healthy: Vec<usize> = (0..allowed.len())
            .filter(|&i| !endpoints[i].is_ejected(now_ms))
            .collect();
        let pool: Vec<usize> = if healthy.is_empty() {
            (0..allowed.len()).collect()
        } else {
            healthy
        };
        let chosen = match pool.len() {
            1 => pool[0],
            n => {
                let mut rng = rand::thread_rng();
                let a = rng.gen_range(0..n);
                let mut b = rng.gen_range(0..n - 1);
                if b >= a {
                    b += 1;
                }
                let (a, b) = (pool[a], pool[b]);
                if load(&endpoints[b]) < load(&endpoints[a]) {
                    b
                } else {
                    a
                }
            }
        };
        let endpoint = Arc::clone(&endpoints[chosen]);
        endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(Pick {
            instance: allowed[chosen].clone(),
            endpoint,
        })
    }

    /// Requests to `instance` picked and not finished yet.
    pub fn in_flight(&self, instance: &Instance) -> usize {
        self.existing(instance)
            .map_or(0, |e| e.in_flight.load(Ordering::Relaxed))
    }

    /// Whether `instance` is ejected right now.
    pub fn is_ejected(&self, instance: &Instance) -> bool {
        self.existing(instance)
            .is_some_and(|e| e.is_ejected(e.now_ms()))
    }

    fn existing(&self, instance: &Instance) -> Option<Arc<Endpoint>> {
        let services = self.services.read().unwrap_or_else(|e| e.into_inner());
        services
            .get(&instance.service)?
            .get(&instance.instance_id)
            .cloned()
    }

    /// The endpoints of `wanted` (in order), creating missing ones. `all` is the caller's full
    /// current set, used to prune instances that have gone.
    fn endpoints(&self, all: &[Instance], wanted: &[&Instance]) -> Vec<Arc<Endpoint>> {
        {
            let services = self.services.read().unwrap_or_else(|e| e.into_inner());
            let found: Option<Vec<Arc<Endpoint>>> = wanted
                .iter()
                .map(|i| {
                    services
                        .get(&i.service)
                        .and_then(|s| s.get(&i.instance_id))
                        .cloned()
                })
                .collect();
            if let Some(found) = found {
                return found;
            }
        }
        let mut services = self.services.write().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::with_capacity(wanted.len());
        for instance in wanted {
            let table = services.entry(instance.service.clone()).or_default();
            if table.len() > all.len() * 2 + PRUNE_SLACK {
                table.retain(|id, e| {
                    e.in_flight.load(Ordering::Relaxed) > 0
                        || all
                            .iter()
                            .any(|i| i.service == instance.service && &i.instance_id == id)
                });
            }
            let endpoint = table
                .entry(instance.instance_id.clone())
                .or_insert_with(|| Arc::new(Endpoint::new(self.epoch)));
            out.push(Arc::clone(endpoint));
        }
        out
    }
}

/// What two candidates are compared by: in-flight requests, then latency average.
fn load(e: &Endpoint) -> (usize, u64) {
    (
        e.in_flight.load(Ordering::Relaxed),
        e.ewma_micros.load(Ordering::Relaxed),
    )
}

/// A picked instance with its in-flight slot, released when the pick is dropped (or reported
/// with [`Pick::success`] / [`Pick::failure`]).
#[derive(Debug)]
pub struct Pick {
    instance: Instance,
    endpoint: Arc<Endpoint>,
}

impl Pick {
    /// The instance to call.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// The call succeeded after `latency`: records it in the latency average and clears the
    /// failure count.
    pub fn success(self, latency: Duration) {
        let sample = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let _ =
            self.endpoint
                .ewma_micros
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                    Some(if old == 0 {
                        sample
                    } else {
                        let avg = (u128::from(old) * u128::from(10 - EWMA_NEW_TENTHS)
                            + u128::from(sample) * u128::from(EWMA_NEW_TENTHS))
                            / 10;
                        u64::try_from(avg).unwrap_or(u64::MAX).max(1)
                    })
                });
        self.endpoint.failures.store(0, Ordering::Relaxed);
    }

    /// The call failed (error status, timeout). After [`FAILURES_TO_EJECT`] consecutive
    /// failures the instance is ejected for [`EJECTION_TIME`]; the count is not reset by the
    /// ejection, so a returning instance that fails again is ejected again at once.
    pub fn failure(self) {
        let failures = self
            .endpoint
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if failures >= FAILURES_TO_EJECT {
            self.eject("failed repeatedly");
        }
    }

    /// The instance could not be connected to: nothing listens there any more, so it is
    /// ejected at once for [`EJECTION_TIME`].
    pub fn failure_connect(self) {
        self.endpoint.failures.fetch_add(1, Ordering::Relaxed);
        self.eject("refused the connection");
    }

    fn eject(&self, why: &'static str) {
        if self.endpoint.eject() {
            tracing::info!(
                service = %self.instance.service,
                instance_id = %self.instance.instance_id,
                reason = why,
                "Ejected an instance for {} s.",
                EJECTION_TIME.as_secs()
            );
        }
    }
}

impl Drop for Pick {
    fn drop(&mut self) {
        self.endpoint.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::{HashMap, VecDeque};

    use proptest::prelude::*;

    use super::*;

    fn instances(n: usize) -> Vec<Instance> {
        (0..n)
            .map(|i| {
                Instance::new(
                    "catalog",
                    format!("i{i}"),
                    format!("127.0.0.1:{}", 1000 + i),
                )
            })
            .collect()
    }

    #[test]
    fn an_empty_set_has_no_pick() {
        assert!(Balancer::new().pick(&[]).is_none());
    }

    #[test]
    fn never_picks_an_ejected_instance_while_others_exist() {
        let b = Balancer::new();
        let set = instances(3);
        let bad = set[1].clone();
        loop {
            let p = b.pick(&set).unwrap();
            if p.instance().instance_id == bad.instance_id {
                p.failure_connect();
                break;
            }
        }
        assert!(b.is_ejected(&bad));
        for _ in 0..1000 {
            let p = b.pick(&set).unwrap();
            assert_ne!(p.instance().instance_id, bad.instance_id);
            p.success(Duration::from_millis(1));
        }
    }

    #[test]
    fn three_consecutive_failures_eject_and_a_success_resets_the_count() {
        let b = Balancer::new();
        let set = instances(1);
        b.pick(&set).unwrap().failure();
        b.pick(&set).unwrap().failure();
        b.pick(&set).unwrap().success(Duration::from_millis(1));
        b.pick(&set).unwrap().failure();
        b.pick(&set).unwrap().failure();
        assert!(!b.is_ejected(&set[0]));
        b.pick(&set).unwrap().failure();
        assert!(b.is_ejected(&set[0]));
    }

    #[test]
    fn falls_back_to_ejected_instances_when_all_are_ejected() {
        let b = Balancer::new();
        let set = instances(2);
        for _ in 0..100 {
            b.pick(&set).unwrap().failure_connect();
        }
        assert!(set.iter().all(|i| b.is_ejected(i)));
        assert!(b.pick(&set).is_some());
    }

    #[test]
    fn excluded_instances_are_never_picked() {
        let b = Balancer::new();
        let set = instances(3);
        let exclude = vec!["i0".to_owned(), "i2".to_owned()];
        for _ in 0..200 {
            assert_eq!(
                b.pick_excluding(&set, &exclude)
                    .unwrap()
                    .instance()
                    .instance_id,
                "i1"
            );
        }
        let all: Vec<String> = set.iter().map(|i| i.instance_id.clone()).collect();
        assert!(b.pick_excluding(&set, &all).is_none());
    }

    #[test]
    fn in_flight_is_released_when_the_pick_is_dropped() {
        let b = Balancer::new();
        let set = instances(1);
        let p = b.pick(&set).unwrap();
        let q = b.pick(&set).unwrap();
        assert_eq!(b.in_flight(&set[0]), 2);
        drop(p);
        q.failure();
        assert_eq!(b.in_flight(&set[0]), 0);
    }

    #[test]
    fn a_slow_instance_gets_less_traffic_than_fast_ones() {
        // A discrete simulation instead of real time: 12 requests are always outstanding; a
        // call to the slow instance lasts 10 steps, a call to a fast one 1 step.
        let b = Balancer::new();
        let set = instances(3);
        let slow = "i0";
        let mut outstanding: VecDeque<(Pick, u32)> = VecDeque::new();
        let mut picks: HashMap<String, u32> = HashMap::new();
        for _ in 0..3000 {
            while outstanding.len() < 12 {
                let p = b.pick(&set).unwrap();
                *picks.entry(p.instance().instance_id.clone()).or_default() += 1;
                let steps = if p.instance().instance_id == slow {
                    10
                } else {
                    1
                };
                outstanding.push_back((p, steps));
            }
            let mut still = VecDeque::new();
            for (p, left) in outstanding.drain(..) {
                if left == 1 {
                    let ms = if p.instance().instance_id == slow {
                        100
                    } else {
                        10
                    };
                    p.success(Duration::from_millis(ms));
                } else {
                    still.push_back((p, left - 1));
                }
            }
            outstanding = still;
        }
        let (s, f1, f2) = (picks[slow], picks["i1"], picks["i2"]);
        assert!(s * 2 < f1 && s * 2 < f2, "slow {s}, fast {f1} and {f2}");
    }

    #[test]
    fn vanished_instances_are_eventually_forgotten() {
        let b = Balancer::new();
        for round in 0..100 {
            let set: Vec<Instance> = (0..3)
                .map(|i| Instance::new("catalog", format!("r{round}-{i}"), "127.0.0.1:1"))
                .collect();
            drop(b.pick(&set));
        }
        let services = b.services.read().unwrap();
        assert!(services["catalog"].len() <= 3 * 2 + PRUNE_SLACK + 3);
    }

    proptest! {
        #[test]
        fn pick_always_returns_a_member_of_the_input(
            ids in proptest::collection::vec("[a-e]{1,2}", 0..8),
            failures in proptest::collection::vec(0usize..8, 0..20),
            exclude in proptest::collection::vec("[a-e]{1,2}", 0..3),
        ) {
            let b = Balancer::new();
            let set: Vec<Instance> = ids.iter().map(|id| Instance::new("s", id.clone(), "127.0.0.1:1")).collect();
            for f in failures {
                if let Some(i) = set.get(f) {
                    // Route a failure to that instance through a pick that excludes all others.
                    let others: Vec<String> = set.iter().filter(|x| x.instance_id != i.instance_id).map(|x| x.instance_id.clone()).collect();
                    if let Some(p) = b.pick_excluding(&set, &others) {
                        p.failure_connect();
                    }
                }
            }
            match b.pick_excluding(&set, &exclude) {
                Some(p) => {
                    prop_assert!(set.contains(p.instance()));
                    prop_assert!(!exclude.contains(&p.instance().instance_id));
                }
                None => prop_assert!(set.iter().all(|i| exclude.contains(&i.instance_id))),
            }
            if let Some(p) = b.pick(&set) {
                prop_assert!(set.contains(p.instance()));
            } else {
                prop_assert!(set.is_empty());
            }
        }
    }
}
