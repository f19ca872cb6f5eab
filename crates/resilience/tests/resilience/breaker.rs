use std::time::Duration;

use bazaar_resilience::{
    breakers, BreakerConfig, BreakerState, CircuitBreaker, CircuitBreakerLayer, Outcome,
    ResilienceError, TimeoutLayer,
};
use tower::{Layer, ServiceExt};

use crate::{scripted, Boom, Step};

const FAST: Duration = Duration::from_millis(5);

fn config() -> BreakerConfig {
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

/// Records `pattern` through the permit API: `F` failure, `S` success, `L` slow success.
fn feed(breaker: &CircuitBreaker, pattern: &str) {
    for c in pattern.chars() {
        let permit = breaker
            .try_acquire()
            .expect("closed breaker refused a call");
        match c {
            'F' => permit.failure(),
            'S' => permit.success(FAST),
            'L' => permit.success(Duration::from_secs(3)),
            other => panic!("bad pattern char {other}"),
        }
    }
}

fn open(name: &str) -> CircuitBreaker {
    let breaker = CircuitBreaker::new(name, config());
    feed(&breaker, "FFFFFFFFFF");
    assert_eq!(breaker.state(), BreakerState::Open);
    breaker
}

#[tokio::test(start_paused = true)]
async fn trips_on_a_failure_rate_over_the_window_not_on_consecutive_failures() {
    let breaker = CircuitBreaker::new("rate", config());
    // Six failures in ten calls, never more than two in a row.
    feed(&breaker, "FSFFSFSFS");
    assert_eq!(
        breaker.state(),
        BreakerState::Closed,
        "9 calls < minimum_calls"
    );
    feed(&breaker, "F");
    assert_eq!(breaker.state(), BreakerState::Open);
    let snap = breaker.snapshot();
    assert_eq!((snap.calls, snap.failures), (10, 6));
    assert!((snap.failure_rate - 0.6).abs() < 1e-9);
    assert!(snap.opened_at.is_some());
}

#[tokio::test(start_paused = true)]
async fn four_failures_in_ten_calls_keep_it_closed() {
    let breaker = CircuitBreaker::new("four-in-ten", config());
    // Four failures in a row, then successes: a "consecutive failures" breaker with a
    // threshold of 4 would open here; a 50 % rate breaker must not.
    feed(&breaker, "FFFFSSSSSS");
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert!((breaker.snapshot().failure_rate - 0.4).abs() < 1e-9);
}

#[tokio::test(start_paused = true)]
async fn fewer_calls_than_the_minimum_never_trip_it() {
    let breaker = CircuitBreaker::new("minimum", config());
    feed(&breaker, "FFFFFFFFF");
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.snapshot().failure_rate, 1.0);
}

#[tokio::test(start_paused = true)]
async fn old_outcomes_slide_out_of_the_window() {
    let breaker = CircuitBreaker::new("sliding", config());
    feed(&breaker, "FFFFF");
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(breaker.snapshot().calls, 0, "the window has passed");
    // Counted with the old failures this would be 9 of 15 (60 %): open.
    feed(&breaker, "FFFFSSSSSS");
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.snapshot().calls, 10);
}

#[tokio::test(start_paused = true)]
async fn outcomes_still_in_the_window_count() {
    let breaker = CircuitBreaker::new("still-in", config());
    feed(&breaker, "FFFFF");
    tokio::time::advance(Duration::from_secs(8)).await;
    feed(&breaker, "SSSS");
    assert_eq!(breaker.state(), BreakerState::Closed);
    feed(&breaker, "S");
    // 5 of 10: at the threshold.
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn slow_calls_open_it() {
    let breaker = CircuitBreaker::new("slow", config());
    // Eight slow successes of ten: a slow rate of 0.8, no failures.
    feed(&breaker, "LLLLSLLLSL");
    assert_eq!(breaker.state(), BreakerState::Open);
    let snap = breaker.snapshot();
    assert_eq!((snap.failures, snap.slow_calls), (0, 8));
}

#[tokio::test(start_paused = true)]
async fn slow_calls_through_the_layer_are_timed_and_open_it() {
    let breaker = CircuitBreaker::new("slow-layer", config());
    let (inner, calls) = scripted::<()>(|_| Step::Sleep(Duration::from_secs(3)));
    let service = CircuitBreakerLayer::new(breaker.clone()).layer(inner);
    // Ten concurrent calls of 3 s each: all inside the 10 s window.
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..10 {
        set.spawn(service.clone().oneshot(()));
    }
    while let Some(result) = set.join_next().await {
        assert!(result.unwrap().is_ok());
    }
    assert_eq!(calls.get(), 10);
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn a_call_cancelled_after_running_slow_counts_as_slow() {
    let breaker = CircuitBreaker::new("cancelled", config());
    let (inner, _) = scripted::<()>(|_| Step::Sleep(Duration::from_secs(60)));
    // The timeout outside the breaker drops the call at 2.5 s, past slow_call_duration.
    let service = TimeoutLayer::new(Duration::from_millis(2_500))
        .layer(CircuitBreakerLayer::new(breaker.clone()).layer(inner));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..10 {
        set.spawn(service.clone().oneshot(()));
    }
    while let Some(result) = set.join_next().await {
        let err = result.unwrap().unwrap_err();
        assert!(matches!(err, ResilienceError::Timeout));
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(breaker.snapshot().slow_calls, 10);
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_fails_fast_without_calling_the_service() {
    let breaker = open("fail-fast");
    let (inner, calls) = scripted::<()>(|_| Step::Ok);
    let service = CircuitBreakerLayer::new(breaker.clone()).layer(inner);
    for _ in 0..5 {
        let err = service.clone().oneshot(()).await.unwrap_err();
        assert!(matches!(err, ResilienceError::Open));
    }
    assert_eq!(calls.get(), 0);
    let refused = breaker.try_acquire().unwrap_err();
    assert_eq!(refused.name(), "fail-fast");
    assert_eq!(refused.retry_after(), Some(Duration::from_secs(5)));
}

#[tokio::test(start_paused = true)]
async fn half_open_lets_only_the_configured_probes_through() {
    let breaker = open("probes");
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    let probes: Vec<_> = (0..3).map(|_| breaker.try_acquire().unwrap()).collect();
    assert!(breaker.try_acquire().is_err(), "a fourth probe");
    // A probe given back (dropped without an outcome) frees its slot.
    let mut probes = probes.into_iter();
    drop(probes.next());
    let again = breaker.try_acquire().unwrap();
    assert!(breaker.try_acquire().is_err());
    again.success(FAST);
    for p in probes {
        p.success(FAST);
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_it() {
    let breaker = open("probe-fails");
    tokio::time::advance(Duration::from_secs(5)).await;
    let first = breaker.try_acquire().unwrap();
    let second = breaker.try_acquire().unwrap();
    first.success(FAST);
    second.failure();
    assert_eq!(breaker.state(), BreakerState::Open);
    // Open for a full open_duration again.
    tokio::time::advance(Duration::from_millis(4_999)).await;
    assert_eq!(breaker.state(), BreakerState::Open);
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn a_slow_probe_reopens_it() {
    let breaker = open("probe-slow");
    tokio::time::advance(Duration::from_secs(5)).await;
    breaker
        .try_acquire()
        .unwrap()
        .success(Duration::from_secs(2));
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn successful_probes_close_it_with_an_empty_window() {
    let breaker = open("recovers");
    tokio::time::advance(Duration::from_secs(5)).await;
    let (inner, calls) = scripted::<()>(|_| Step::Ok);
    let service = CircuitBreakerLayer::new(breaker.clone()).layer(inner);
    for _ in 0..3 {
        assert!(service.clone().oneshot(()).await.is_ok());
    }
    assert_eq!(calls.get(), 3);
    assert_eq!(breaker.state(), BreakerState::Closed);
    let snap = breaker.snapshot();
    assert_eq!(snap.calls, 0, "the failures that opened it are forgotten");
    assert_eq!(snap.opened_at, None);
}

#[tokio::test(start_paused = true)]
async fn an_outcome_from_before_a_transition_is_not_counted() {
    let breaker = CircuitBreaker::new("stale", config());
    let late = breaker.try_acquire().unwrap();
    feed(&breaker, "FFFFFFFFFF");
    assert_eq!(breaker.state(), BreakerState::Open);
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    // A call let through while closed finishes now: it is not a probe.
    late.failure();
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn the_classifier_decides_which_errors_are_failures() {
    let breaker = CircuitBreaker::new("classified", config());
    let (inner, _) = scripted::<()>(|_| Step::Fail { retryable: false });
    // Permanent errors (say, a 404) mean the dependency answered: not failures.
    let service = CircuitBreakerLayer::new(breaker.clone())
        .failure_if(|e: &Boom| e.retryable)
        .layer(inner.clone());
    for _ in 0..20 {
        let _ = service.clone().oneshot(()).await;
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.snapshot().failures, 0);

    // A whole-result classifier can count responses (say, HTTP 5xx) as failures.
    let breaker = CircuitBreaker::new("classified-responses", config());
    let (ok_inner, _) = scripted::<()>(|_| Step::Ok);
    let counts_even_answers = CircuitBreakerLayer::new(breaker.clone())
        .classify_with(|r: &Result<usize, ResilienceError<Boom>>| match r {
            Ok(n) if n % 2 == 0 => Outcome::Failure,
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Ignore,
        })
        .layer(ok_inner);
    for _ in 0..10 {
        let _ = counts_even_answers.clone().oneshot(()).await;
    }
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn every_live_breaker_is_listed_and_states_serialize_lowercase() {
    let breaker = open("listed-breaker");
    let listed = breakers();
    let snap = listed
        .iter()
        .find(|s| s.name == "listed-breaker")
        .expect("listed");
    assert_eq!(snap.state, BreakerState::Open);
    let json = serde_json::to_value(snap).unwrap();
    assert_eq!(json["state"], "open");
    assert_eq!(json["calls"], 10);
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(
        serde_json::to_value(breaker.state()).unwrap(),
        serde_json::json!("half_open")
    );
    drop(breaker);
    assert!(breakers().iter().all(|s| s.name != "listed-breaker"));
}

#[tokio::test(start_paused = true)]
async fn exports_the_state_gauge_and_transition_counter() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let breaker = metrics::with_local_recorder(&recorder, || {
        let breaker = CircuitBreaker::new("exported", config());
        assert!(handle
            .render()
            .contains("bazaar_breaker_state{breaker=\"exported\"} 0"));
        feed(&breaker, "FFFFFFFFFF");
        breaker
    });
    let text = handle.render();
    assert!(
        text.contains("bazaar_breaker_state{breaker=\"exported\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("bazaar_breaker_transitions_total{breaker=\"exported\",to=\"open\"} 1"),
        "{text}"
    );
    tokio::time::advance(Duration::from_secs(5)).await;
    metrics::with_local_recorder(&recorder, || {
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
    });
    let text = handle.render();
    assert!(
        text.contains("bazaar_breaker_state{breaker=\"exported\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("bazaar_breaker_transitions_total{breaker=\"exported\",to=\"half_open\"} 1"),
        "{text}"
    );
}
