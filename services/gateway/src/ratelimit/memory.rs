//! The in-memory limiter: token buckets in a sharded map, for one gateway process.
//!
//! Hot-path cost is one keyed hash, one uncontended shard lock and a little float arithmetic:
//! the map is split into [`SHARDS`] independently locked shards so concurrent requests from
//! different callers rarely meet, and keys are 64-bit SipHash fingerprints (randomly keyed
//! per process, so clients cannot aim for collisions) so lookups never allocate. Two callers
//! sharing a fingerprint would share a bucket; with a million live buckets the odds of any
//! such pair are about one in 30 million.
//!
//! Memory stays bounded: a bucket that has refilled to its burst is indistinguishable from
//! a missing one, so each shard drops such buckets at most once per [`SWEEP_INTERVAL`] while
//! it is being used, and a shard at its share of `max_keys` evicts an arbitrary bucket before
//! adding one (which at worst hands that caller a fresh burst).

use std::{
    collections::{hash_map::RandomState, HashMap},
    hash::{BuildHasher, BuildHasherDefault, Hasher},
    sync::Mutex,
    time::{Duration, Instant},
};

use super::{bucket::Bucket, Check, Decision, Rate, RateKey, RateLimiter};

/// Independently locked parts of the map.
pub const SHARDS: usize = 64;
/// Buckets kept at most (over all shards) unless told otherwise: about 10 MiB.
pub const DEFAULT_MAX_KEYS: usize = 256 * 1024;
/// How often a shard in use drops the buckets that have refilled.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Token buckets in process memory. Cheap to share (`Arc`); one per gateway.
pub struct InMemoryRateLimiter {
    shards: Box<[Mutex<Shard>]>,
    keys: RandomState,
    epoch: Instant,
    max_per_shard: usize,
}

impl std::fmt::Debug for InMemoryRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryRateLimiter")
            .field("buckets", &self.len())
            .finish_non_exhaustive()
    }
}

struct Shard {
    buckets: HashMap<u64, Bucket, BuildHasherDefault<Fingerprint>>,
    next_sweep: u64,
}

/// The keys are already SipHash outputs; hashing them again would only cost time.
#[derive(Default)]
struct Fingerprint(u64);

impl Hasher for Fingerprint {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Default for InMemoryRateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryRateLimiter {
    /// A limiter keeping at most [`DEFAULT_MAX_KEYS`] buckets.
    pub fn new() -> Self {
        Self::with_max_keys(DEFAULT_MAX_KEYS)
    }

    /// A limiter keeping at most about `max_keys` buckets.
    pub fn with_max_keys(max_keys: usize) -> Self {
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    buckets: HashMap::default(),
                    next_sweep: 0,
                })
            })
            .collect::<Vec<_>>()
            .into_boxed_slice();
        Self {
            shards,
            keys: RandomState::new(),
            epoch: Instant::now(),
            max_per_shard: max_keys.div_ceil(SHARDS).max(1),
        }
    }

    /// Buckets currently held (those not yet known to have refilled).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).buckets.len())
            .sum()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every bucket that has refilled, in every shard, now.
    pub fn sweep(&self) {
        self.sweep_at(self.now());
    }

    fn sweep_at(&self, now: u64) {
        for shard in self.shards.iter() {
            shard
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .buckets
                .retain(|_, b| !b.is_full_at(now));
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// [`RateLimiter::check`] at a given clock reading (nanoseconds since the limiter began).
    pub(crate) fn check_at(&self, key: RateKey<'_>, rate: Rate, now: u64) -> Decision {
        let fp = self.keys.hash_one(key);
        // Bits 32..38 pick the shard: not the low bits (hashbrown's bucket index) nor the top
        // seven (its control byte), so the map inside a shard still sees well-spread hashes.
        let shard = &self.shards[(fp >> 32) as usize % SHARDS];
        let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        if now >= shard.next_sweep {
            shard.buckets.retain(|_, b| !b.is_full_at(now));
            if shard.buckets.capacity() > 64 && shard.buckets.len() < shard.buckets.capacity() / 4 {
                shard.buckets.shrink_to_fit();
            }
            shard.next_sweep = now.saturating_add(SWEEP_INTERVAL.as_nanos() as u64);
        }
        if let Some(bucket) = shard.buckets.get_mut(&fp) {
            return bucket.take(rate, now);
        }
        if shard.buckets.len() >= self.max_per_shard {
            if let Some(&victim) = shard.buckets.keys().next() {
                shard.buckets.remove(&victim);
            }
        }
        let mut bucket = Bucket::full(rate, now);
        let decision = bucket.take(rate, now);
        shard.buckets.insert(fp, bucket);
        decision
    }
}

impl RateLimiter for InMemoryRateLimiter {
    fn check<'a>(&'a self, key: RateKey<'a>, rate: Rate) -> Check<'a> {
        Check::ready(self.check_at(key, rate, self.now()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::ratelimit::Subject;

    const SEC: u64 = 1_000_000_000;

    fn user(id: &str) -> RateKey<'_> {
        RateKey {
            scope: "",
            subject: Subject::User(id),
        }
    }

    #[test]
    fn buckets_are_per_key_and_per_scope() {
        let l = InMemoryRateLimiter::new();
        let rate = Rate {
            per_second: 1.0,
            burst: 2,
        };
        assert!(l.check_at(user("a"), rate, 0).allowed);
        assert!(l.check_at(user("a"), rate, 0).allowed);
        assert!(!l.check_at(user("a"), rate, 0).allowed);
        assert!(l.check_at(user("b"), rate, 0).allowed);
        assert!(
            l.check_at(
                RateKey {
                    scope: "/login",
                    subject: Subject::User("a")
                },
                rate,
                0
            )
            .allowed
        );
        let ip = RateKey {
            scope: "",
            subject: Subject::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        };
        assert!(l.check_at(ip, rate, 0).allowed);
    }

    #[test]
    fn refilled_buckets_are_swept_so_memory_stays_bounded() {
        let l = InMemoryRateLimiter::new();
        let rate = Rate {
            per_second: 1.0,
            burst: 100,
        };
        let ids: Vec<String> = (0..5_000).map(|i| format!("u{i}")).collect();
        for id in &ids {
            l.check_at(user(id), rate, 0);
        }
        assert_eq!(l.len(), 5_000);
        l.sweep_at(SEC / 2);
        assert_eq!(l.len(), 5_000, "half-refilled buckets must be kept");
        l.sweep_at(SEC);
        assert_eq!(l.len(), 0);
    }

    #[test]
    fn shards_sweep_themselves_while_in_use() {
        let l = InMemoryRateLimiter::new();
        let rate = Rate {
            per_second: 100.0,
            burst: 100,
        };
        for i in 0..5_000 {
            l.check_at(user(&format!("u{i}")), rate, 0);
        }
        // Enough distinct keys two seconds later to touch every shard at least once.
        for i in 0..SHARDS * 40 {
            l.check_at(user(&format!("later{i}")), rate, 2 * SEC);
        }
        assert!(l.len() <= SHARDS * 40, "{}", l.len());
    }

    #[test]
    fn a_full_shard_evicts_instead_of_growing() {
        let l = InMemoryRateLimiter::with_max_keys(SHARDS);
        let rate = Rate {
            per_second: 0.001,
            burst: 5,
        };
        for i in 0..10_000 {
            l.check_at(user(&format!("u{i}")), rate, 0);
        }
        assert!(l.len() <= SHARDS, "{}", l.len());
    }
}
