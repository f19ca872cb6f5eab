//! A circuit breaker judged on the failure and slow-call *rates* over a sliding time window.
//!
//! ```text
//!            rate ≥ threshold over ≥ minimum_calls            open_duration passed
//!   Closed ───────────────────────────────────────▶ Open ─────────────────────────▶ HalfOpen
//!     ▲                                               ▲                                │
//!     │              a probe failed (or was slow)     └────────────────────────────────┤
//!     └────────────────────────────────────────────────────────────────────────────────┘
//!                         all half_open_max_calls probes succeeded
//! ```
//!
//! Closed: every call is let through and its outcome lands in a bucketed window
//! ([`BUCKETS`] buckets of `window / BUCKETS`). After each outcome, if the window holds at
//! least `minimum_calls` and the failure rate or the slow-call rate reaches its threshold,
//! the breaker opens. Open: [`CircuitBreaker::try_acquire`] fails fast for `open_duration`.
//! HalfOpen: at most `half_open_max_calls` probes are let through; when that many have
//! succeeded the breaker closes with an empty window; a failed or slow probe re-opens it.
//! A permit dropped without an outcome gives its probe slot back.
//!
//! An outcome only counts in the state its permit was taken in: a slow call that was let
//! through while closed and finishes after the breaker opened changes nothing.
//!
//! Time is tokio's ([`tokio::time::Instant`]), so tests with paused time drive it.

mod layer;
mod window;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

pub use layer::{
    CircuitBreakerLayer, CircuitBreakerService, Classify, ClassifyFn, DefaultClassifier, FailureIf,
    Outcome, ResponseFuture,
};
pub use window::BUCKETS;
use window::{Sample, Totals, Window};

use crate::error::BreakerOpen;

/// How a breaker judges its calls. The defaults suit a call to another service on the
/// same network.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// The sliding time window outcomes are counted over (default 10 s).
    pub window: Duration,
    /// Fewer calls than this in the window never open the breaker (default 10).
    pub minimum_calls: u32,
    /// Failed calls / calls in the window at or above which the breaker opens (default 0.5).
    pub failure_rate_threshold: f64,
    /// A successful call taking at least this long counts as slow (default 2 s).
    pub slow_call_duration: Duration,
    /// Slow calls / calls in the window at or above which the breaker opens (default 0.8).
    pub slow_call_rate_threshold: f64,
    /// How long the breaker stays open before it lets probes through (default 5 s).
    pub open_duration: Duration,
    /// How many probes half-open lets through; all must succeed to close (default 3, at least 1).
    pub half_open_max_calls: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            window: Duration::from_secs(10),
            minimum_calls: 10,
            failure_rate_threshold: 0.5,
            slow_call_duration: Duration::from_secs(2),
            slow_call_rate_threshold: 0.8,
            open_duration: Duration::from_secs(5),
            half_open_max_calls: 3,
        }
    }
}

/// The breaker's state, as `/admin/breakers` and the `bazaar_breaker_state` gauge show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through; outcomes are counted.
    Closed,
    /// Calls fail fast.
    Open,
    /// A few probes go through to see whether the dependency recovered.
    HalfOpen,
}

impl BreakerState {
    /// The value of the `bazaar_breaker_state` gauge: 0 closed, 1 half-open, 2 open.
    pub fn gauge_value(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        }
    }

    /// The stable lowercase name (`closed`, `open`, `half_open`), as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// A point-in-time view of one breaker, for `/admin/breakers` and tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakerSnapshot {
    /// The name the breaker was created with.
    pub name: String,
    /// Its state now.
    pub state: BreakerState,
    /// Failed calls / calls in the window (0 when the window is empty).
    pub failure_rate: f64,
    /// Slow calls / calls in the window.
    pub slow_rate: f64,
    /// Calls in the window.
    pub calls: u32,
    /// Failed calls in the window.
    pub failures: u32,
    /// Slow calls in the window.
    pub slow_calls: u32,
    /// When it last opened (RFC 3339 UTC), while open or half-open.
    pub opened_at: Option<String>,
}

/// A circuit breaker. Cloning is cheap and clones share the state; every breaker is listed
/// by [`breakers`] while a clone of it lives.
#[derive(Clone)]
pub struct CircuitBreaker {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.shared.name)
            .field("state", &self.state())
            .finish()
    }
}

struct Shared {
    name: Arc<str>,
    config: BreakerConfig,
    core: Mutex<Core>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { issued: u32, succeeded: u32 },
}

struct Core {
    phase: Phase,
    /// Bumped on every transition; a permit's outcome counts only in its own generation.
    generation: u64,
    window: Window,
    /// Wall-clock microseconds of the last opening, for the snapshot.
    opened_at_micros: Option<i64>,
}

/// A transition made under the lock, reported (logged, exported) after it is released.
struct Transition {
    from: BreakerState,
    to: BreakerState,
    totals: Totals,
}

static REGISTRY: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());

/// Snapshots of every live breaker in this process, sorted by name.
pub fn breakers() -> Vec<BreakerSnapshot> {
    let live: Vec<Arc<Shared>> = {
        let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        registry.retain(|w| w.strong_count() > 0);
        registry.iter().filter_map(Weak::upgrade).collect()
    };
    let mut snapshots: Vec<BreakerSnapshot> = live
        .into_iter()
        .map(|shared| CircuitBreaker { shared }.snapshot())
        .collect();
    snapshots.sort_by(|a, b| a.name.cmp(&b.name));
    snapshots
}

impl CircuitBreaker {
    /// A closed breaker called `name` (used in logs, metrics and `/admin/breakers`),
    /// registered in the process-wide list.
    /// A `half_open_max_calls` of 0 is taken as 1 (with no probes it could never close).
    pub fn new(name: &str, mut config: BreakerConfig) -> Self {
        config.half_open_max_calls = config.half_open_max_calls.max(1);
        let shared = Arc::new(Shared {
            name: Arc::from(name),
            core: Mutex::new(Core {
                phase: Phase::Closed,
                generation: 0,
                window: Window::new(config.window, Instant::now()),
                opened_at_micros: None,
            }),
            config,
        });
        metrics::gauge!("bazaar_breaker_state", "breaker" => name.to_owned())
            .set(BreakerState::Closed.gauge_value());
        REGISTRY
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::downgrade(&shared));
        CircuitBreaker { shared }
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The breaker's configuration.
    pub fn config(&self) -> &BreakerConfig {
        &self.shared.config
    }

    /// Asks to make a call. Closed: always a permit. Open: [`BreakerOpen`] (do not make the
    /// call). HalfOpen: a permit while fewer than `half_open_max_calls` probes are out.
    ///
    /// Report the call's outcome on the permit; dropping it records nothing.
    pub fn try_acquire(&self) -> Result<Permit, BreakerOpen> {
        let now = Instant::now();
        let mut core = self.lock();
        let transition = self.advance(&mut core, now);
        let result = match &mut core.phase {
            Phase::Closed => Ok(core.generation),
            Phase::Open { until } => Err(BreakerOpen {
                name: self.shared.name.clone(),
                retry_after: Some(until.saturating_duration_since(now)),
            }),
            Phase::HalfOpen { issued, .. } => {
                if *issued < self.shared.config.half_open_max_calls {
                    *issued += 1;
                    Ok(core.generation)
                } else {
                    Err(BreakerOpen {
                        name: self.shared.name.clone(),
                        retry_after: None,
                    })
                }
            }
        };
        drop(core);
        self.report(transition);
        result.map(|generation| Permit {
            breaker: Some(self.shared.clone()),
            generation,
        })
    }

    /// The state now (an open breaker whose `open_duration` has passed reports half-open).
    pub fn state(&self) -> BreakerState {
        let mut core = self.lock();
        let transition = self.advance(&mut core, Instant::now());
        let state = core.phase.state();
        drop(core);
        self.report(transition);
        state
    }

    /// Counts and rates over the current window, and the state.
    pub fn snapshot(&self) -> BreakerSnapshot {
        let now = Instant::now();
        let mut core = self.lock();
        let transition = self.advance(&mut core, now);
        let totals = core.window.totals(now);
        let state = core.phase.state();
        let opened_at = match state {
            BreakerState::Closed => None,
            _ => core
                .opened_at_micros
                .map(bazaar_runtime::time::rfc3339_micros),
        };
        drop(core);
        self.report(transition);
        BreakerSnapshot {
            name: self.shared.name.to_string(),
            state,
            failure_rate: totals.failure_rate(),
            slow_rate: totals.slow_rate(),
            calls: totals.calls,
            failures: totals.failures,
            slow_calls: totals.slow,
            opened_at,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        // The core holds plain counters that are consistent after every statement, so a
        // panic elsewhere while the lock was held leaves nothing to repair.
        self.shared
            .core
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Open → HalfOpen once `open_duration` has passed.
    fn advance(&self, core: &mut Core, now: Instant) -> Option<Transition> {
        match core.phase {
            Phase::Open { until } if now >= until => Some(self.move_to(
                core,
                Phase::HalfOpen {
                    issued: 0,
                    succeeded: 0,
                },
                now,
            )),
            _ => None,
        }
    }

    fn move_to(&self, core: &mut Core, to: Phase, now: Instant) -> Transition {
        let from = core.phase.state();
        let totals = core.window.totals(now);
        core.phase = to;
        core.generation = core.generation.wrapping_add(1);
        match to {
            Phase::Closed => core.window.reset(),
            Phase::Open { .. } => {
                core.opened_at_micros = Some(bazaar_runtime::time::now_micros());
            }
            Phase::HalfOpen { .. } => {}
        }
        Transition {
            from,
            to: to.state(),
            totals,
        }
    }

    fn record(&self, generation: u64, outcome: Recorded) {
        let now = Instant::now();
        let config = &self.shared.config;
        let mut core = self.lock();
        if core.generation != generation {
            // Taken before the last transition: it says nothing about the current state.
            return;
        }
        let transition = match (&mut core.phase, outcome) {
            (Phase::Closed, Recorded::Ignored) => None,
            (Phase::Closed, Recorded::Success(latency)) => {
                let sample = if latency >= config.slow_call_duration {
                    Sample::Slow
                } else {
                    Sample::Fast
                };
                self.record_closed(&mut core, now, sample)
            }
            (Phase::Closed, Recorded::Failure) => {
                self.record_closed(&mut core, now, Sample::Failed)
            }
            (Phase::HalfOpen { issued, .. }, Recorded::Ignored) => {
                *issued = issued.saturating_sub(1);
                None
            }
            (Phase::HalfOpen { succeeded, .. }, Recorded::Success(latency))
                if latency < config.slow_call_duration =>
            {
                *succeeded += 1;
                if *succeeded >= config.half_open_max_calls {
                    Some(self.move_to(&mut core, Phase::Closed, now))
                } else {
                    None
                }
            }
            // A failed or slow probe: the dependency has not recovered.
            (Phase::HalfOpen { .. }, _) => Some(self.open(&mut core, now)),
            // Unreachable in practice (opening bumps the generation); nothing to count.
            (Phase::Open { .. }, _) => None,
        };
        drop(core);
        self.report(transition);
    }

    fn record_closed(&self, core: &mut Core, now: Instant, sample: Sample) -> Option<Transition> {
        core.window.record(now, sample);
        let totals = core.window.totals(now);
        let config = &self.shared.config;
        let trips = totals.calls >= config.minimum_calls
            && (totals.failure_rate() >= config.failure_rate_threshold
                || totals.slow_rate() >= config.slow_call_rate_threshold);
        trips.then(|| self.open(core, now))
    }

    fn open(&self, core: &mut Core, now: Instant) -> Transition {
        let until = now + self.shared.config.open_duration;
        self.move_to(core, Phase::Open { until }, now)
    }

    fn report(&self, transition: Option<Transition>) {
        let Some(t) = transition else { return };
        let name = &*self.shared.name;
        let failure_rate = t.totals.failure_rate();
        let slow_rate = t.totals.slow_rate();
        match t.to {
            BreakerState::Open => tracing::warn!(
                breaker = name,
                from = t.from.as_str(),
                failure_rate,
                slow_rate,
                calls = t.totals.calls,
                "Circuit breaker opened."
            ),
            BreakerState::HalfOpen => {
                tracing::info!(breaker = name, "Circuit breaker half-open: probing.")
            }
            BreakerState::Closed => tracing::info!(breaker = name, "Circuit breaker closed."),
        }
        metrics::gauge!("bazaar_breaker_state", "breaker" => name.to_owned())
            .set(t.to.gauge_value());
        metrics::counter!(
            "bazaar_breaker_transitions_total",
            "breaker" => name.to_owned(),
            "to" => t.to.as_str()
        )
        .increment(1);
    }
}

impl Phase {
    fn state(&self) -> BreakerState {
        match self {
            Phase::Closed => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Recorded {
    Success(Duration),
    Failure,
    Ignored,
}

/// Leave to make one call through a [`CircuitBreaker`]. Report how it went with
/// [`Permit::success`], [`Permit::failure`] or [`Permit::ignore`]; dropping it is the same
/// as `ignore` (a half-open probe slot is given back).
#[must_use = "report the call's outcome on the permit"]
pub struct Permit {
    breaker: Option<Arc<Shared>>,
    generation: u64,
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Permit {
    /// The call succeeded after `latency` (slow if at least `slow_call_duration`).
    pub fn success(mut self, latency: Duration) {
        self.finish(Recorded::Success(latency));
    }

    /// The call failed in a way that says the dependency is unhealthy.
    pub fn failure(mut self) {
        self.finish(Recorded::Failure);
    }

    /// The call's outcome says nothing about the dependency (e.g. the caller gave up, or a
    /// 4xx answer): not counted.
    pub fn ignore(mut self) {
        self.finish(Recorded::Ignored);
    }

    fn finish(&mut self, outcome: Recorded) {
        if let Some(shared) = self.breaker.take() {
            CircuitBreaker { shared }.record(self.generation, outcome);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.finish(Recorded::Ignored);
    }
}
