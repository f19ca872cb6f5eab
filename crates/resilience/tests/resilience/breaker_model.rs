//! The breaker against a small reference model, on random sequences of calls, held
//! probes and time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bazaar_resilience::{
    lift, BreakerConfig, BreakerState, CircuitBreaker, CircuitBreakerLayer, Permit, ResilienceError,
};
use proptest::prelude::*;
use tower::{Layer, ServiceExt};

const WINDOW_MS: u64 = 1_000;
const SLOW_MS: u64 = 50;
const OPEN_MS: u64 = 300;
const MIN_CALLS: u32 = 4;
const PROBES: u32 = 2;

fn config() -> BreakerConfig {
    BreakerConfig {
        window: Duration::from_millis(WINDOW_MS),
        minimum_calls: MIN_CALLS,
        failure_rate_threshold: 0.5,
        slow_call_duration: Duration::from_millis(SLOW_MS),
        slow_call_rate_threshold: 0.75,
        open_duration: Duration::from_millis(OPEN_MS),
        half_open_max_calls: PROBES,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fast,
    Slow,
    Fail,
}

#[derive(Debug, Clone)]
enum Op {
    /// A call through the layer; a slow one takes SLOW_MS of (paused) time.
    Call(Kind),
    /// Takes a permit and keeps it.
    Hold,
    /// Finishes held permit `i % held` with an outcome (`None`: dropped).
    Release(usize, Option<Kind>),
    /// Time passes.
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![Just(Kind::Fast), Just(Kind::Slow), Just(Kind::Fail)];
    prop_oneof![
        4 => kind.clone().prop_map(Op::Call),
        1 => Just(Op::Hold),
        1 => (any::<usize>(), proptest::option::of(kind)).prop_map(|(i, k)| Op::Release(i, k)),
        2 => (0u64..400).prop_map(Op::Advance),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed,
    Open { until: u64 },
    HalfOpen { issued: u32, succeeded: u32 },
}

/// The reference: a plain list of (time, outcome) for the window, and the rules written
/// out once more in the simplest form.
#[derive(Debug)]
struct Model {
    now: u64,
    phase: Phase,
    generation: u64,
    samples: Vec<(u64, Kind)>,
}

impl Model {
    fn new() -> Model {
        Model {
            now: 0,
            phase: Phase::Closed,
            generation: 0,
            samples: Vec::new(),
        }
    }

    fn goto(&mut self, phase: Phase) {
        if phase == Phase::Closed {
            self.samples.clear();
        }
        self.phase = phase;
        self.generation += 1;
    }

    fn tick(&mut self) {
        if let Phase::Open { until } = self.phase {
            if self.now >= until {
                self.goto(Phase::HalfOpen {
                    issued: 0,
                    succeeded: 0,
                });
            }
        }
    }

    fn state(&mut self) -> BreakerState {
        self.tick();
        match self.phase {
            Phase::Closed => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    fn acquire(&mut self) -> Option<u64> {
        self.tick();
        match &mut self.phase {
            Phase::Closed => Some(self.generation),
            Phase::Open { .. } => None,
            Phase::HalfOpen { issued, .. } if *issued < PROBES => {
                *issued += 1;
                Some(self.generation)
            }
            Phase::HalfOpen { .. } => None,
        }
    }

    /// Outcomes in the window: those recorded in the last 10 buckets of WINDOW_MS / 10.
    fn in_window(&self) -> (u32, u32, u32) {
        let bucket = WINDOW_MS / 10;
        let current = self.now / bucket;
        let live = self
            .samples
            .iter()
            .filter(|(t, _)| current - t / bucket < 10);
        live.fold((0, 0, 0), |(c, f, s), (_, k)| match k {
            Kind::Fast => (c + 1, f, s),
            Kind::Slow => (c + 1, f, s + 1),
            Kind::Fail => (c + 1, f + 1, s),
        })
    }

    fn record(&mut self, generation: u64, outcome: Option<Kind>) {
        if generation != self.generation {
            return;
        }
        match (&mut self.phase, outcome) {
            (Phase::Closed, None) => {}
            (Phase::Closed, Some(kind)) => {
                self.samples.push((self.now, kind));
                let (calls, failures, slow) = self.in_window();
                let rate = |n: u32| f64::from(n) / f64::from(calls);
                if calls >= MIN_CALLS && (rate(failures) >= 0.5 || rate(slow) >= 0.75) {
                    self.goto(Phase::Open {
                        until: self.now + OPEN_MS,
                    });
                }
            }
            (Phase::HalfOpen { issued, .. }, None) => *issued -= 1,
            (Phase::HalfOpen { succeeded, .. }, Some(Kind::Fast)) => {
                *succeeded += 1;
                if *succeeded == PROBES {
                    self.goto(Phase::Closed);
                }
            }
            (Phase::HalfOpen { .. }, Some(_)) => self.goto(Phase::Open {
                until: self.now + OPEN_MS,
            }),
            (Phase::Open { .. }, _) => unreachable!("permits of an open phase do not exist"),
        }
    }
}

fn finish(permit: Permit, kind: Option<Kind>) {
    match kind {
        None => drop(permit),
        Some(Kind::Fast) => permit.success(Duration::from_millis(1)),
        Some(Kind::Slow) => permit.success(Duration::from_millis(SLOW_MS)),
        Some(Kind::Fail) => permit.failure(),
    }
}

async fn check(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let breaker = CircuitBreaker::new("model", config());
    let inner_calls = Arc::new(AtomicUsize::new(0));
    let counter = inner_calls.clone();
    let service = CircuitBreakerLayer::new(breaker.clone()).layer(lift(tower::service_fn(
        move |kind: Kind| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                match kind {
                    Kind::Fast => Ok(()),
                    Kind::Slow => {
                        tokio::time::sleep(Duration::from_millis(SLOW_MS)).await;
                        Ok(())
                    }
                    Kind::Fail => Err("down"),
                }
            }
        },
    )));
    let mut model = Model::new();
    let mut held: Vec<(Permit, u64)> = Vec::new();
    let mut last = BreakerState::Closed;

    for op in ops {
        match op {
            Op::Call(kind) => {
                let before = inner_calls.load(Ordering::SeqCst);
                let permitted = model.acquire();
                let result = service.clone().oneshot(kind).await;
                let called = inner_calls.load(Ordering::SeqCst) - before;
                match permitted {
                    None => {
                        prop_assert!(matches!(result, Err(ResilienceError::Open)));
                        prop_assert_eq!(called, 0, "an open breaker called the service");
                    }
                    Some(generation) => {
                        prop_assert_eq!(called, 1);
                        if kind == Kind::Slow {
                            model.now += SLOW_MS;
                        }
                        model.record(generation, Some(kind));
                    }
                }
            }
            Op::Hold => {
                let got = breaker.try_acquire();
                match model.acquire() {
                    Some(generation) => {
                        held.push((got.expect("model allows a permit"), generation))
                    }
                    None => prop_assert!(got.is_err(), "breaker gave a permit the model refused"),
                }
            }
            Op::Release(i, kind) => {
                if !held.is_empty() {
                    let (permit, generation) = held.remove(i % held.len());
                    finish(permit, kind);
                    model.record(generation, kind);
                }
            }
            Op::Advance(ms) => {
                tokio::time::advance(Duration::from_millis(ms)).await;
                model.now += ms;
            }
        }

        let state = breaker.state();
        prop_assert_eq!(state, model.state());
        prop_assert!(
            !(last == BreakerState::Closed && state == BreakerState::HalfOpen),
            "went from closed straight to half-open"
        );
        prop_assert!(
            !(last == BreakerState::Open && state == BreakerState::Closed),
            "went from open straight to closed"
        );
        if let Phase::HalfOpen { issued, .. } = model.phase {
            prop_assert!(issued <= PROBES);
            let live_probes = held.iter().filter(|(_, g)| *g == model.generation).count();
            prop_assert!(
                live_probes <= PROBES as usize,
                "more probes out than allowed"
            );
        }
        if state == BreakerState::Closed {
            let (calls, failures, slow) = model.in_window();
            let snap = breaker.snapshot();
            prop_assert_eq!(
                (snap.calls, snap.failures, snap.slow_calls),
                (calls, failures, slow)
            );
        }
        last = state;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_breaker_follows_the_reference_model(ops in proptest::collection::vec(op(), 1..120)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(check(ops))?;
    }
}
