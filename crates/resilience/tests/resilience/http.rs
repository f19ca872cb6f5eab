//! The full stack around a real HTTP client (reqwest) against a real loopback server
//! that can be made slow. Real time, short durations; every wait is a bounded poll.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::{extract::State, routing::get, Router};
use bazaar_resilience::{
    lift, BreakerConfig, BreakerState, BulkheadLayer, CircuitBreaker, CircuitBreakerLayer,
    ResilienceError, RetryBudget, RetryLayer, RetryPolicy, TimeoutLayer,
};
use tower::{ServiceBuilder, ServiceExt};

#[derive(Default)]
struct Upstream {
    slow: AtomicBool,
    hits: AtomicUsize,
}

async fn ping(State(up): State<Arc<Upstream>>) -> &'static str {
    up.hits.fetch_add(1, Ordering::SeqCst);
    if up.slow.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    "pong"
}

async fn start_upstream() -> (String, Arc<Upstream>) {
    let upstream = Arc::new(Upstream::default());
    let app = Router::new()
        .route("/ping", get(ping))
        .with_state(upstream.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, upstream)
}

#[tokio::test]
async fn the_breaker_opens_on_a_slow_server_fails_fast_and_closes_after_it_recovers() {
    let (base, upstream) = start_upstream().await;
    let http = reqwest::Client::new();
    let client = tower::service_fn(move |req: http::Request<()>| {
        let request = http.get(format!("{base}{}", req.uri().path()));
        async move { request.send().await?.error_for_status()?.text().await }
    });
    let breaker = CircuitBreaker::new(
        "loopback",
        BreakerConfig {
            window: Duration::from_secs(30),
            minimum_calls: 4,
            failure_rate_threshold: 0.5,
            slow_call_duration: Duration::from_secs(1),
            slow_call_rate_threshold: 0.8,
            open_duration: Duration::from_millis(300),
            half_open_max_calls: 2,
        },
    );
    let service = ServiceBuilder::new()
        // The caller's deadline for the whole call, retries included.
        .layer(TimeoutLayer::new(Duration::from_secs(5)))
        // Retries GETs that timed out, within the budget.
        .layer(RetryLayer::new(RetryPolicy {
            max_attempts: 2,
            base: Duration::from_millis(10),
            max: Duration::from_millis(50),
            budget: Arc::new(RetryBudget::default()),
        }))
        // Sees each attempt: a per-attempt timeout below it is a failure.
        .layer(CircuitBreakerLayer::new(breaker.clone()))
        .layer(BulkheadLayer::new(8, Duration::from_secs(1)))
        // Per attempt: the slow server is cut off here.
        .layer(TimeoutLayer::new(Duration::from_millis(200)))
        .service(lift(client));
    let ping = || {
        service
            .clone()
            .oneshot(http::Request::get("/ping").body(()).unwrap())
    };

    // Healthy.
    for _ in 0..3 {
        assert_eq!(ping().await.unwrap(), "pong");
    }
    assert_eq!(breaker.state(), BreakerState::Closed);

    // The server turns slow: attempts time out until the failure rate opens the breaker.
    upstream.slow.store(true, Ordering::SeqCst);
    let mut failed = 0;
    while breaker.state() != BreakerState::Open {
        assert!(failed < 20, "the breaker never opened");
        assert!(ping().await.is_err());
        failed += 1;
    }
    let snapshot = breaker.snapshot();
    assert!(snapshot.failure_rate >= 0.5, "{snapshot:?}");

    // Open: calls fail fast and the server sees none of them.
    let hits = upstream.hits.load(Ordering::SeqCst);
    for _ in 0..5 {
        let err = ping().await.unwrap_err();
        assert!(matches!(err, ResilienceError::Open), "{err:?}");
    }
    assert_eq!(upstream.hits.load(Ordering::SeqCst), hits);

    // The server recovers: after open_duration the probes succeed and the breaker closes.
    upstream.slow.store(false, Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let answered = ping().await.is_ok();
        if answered && breaker.state() == BreakerState::Closed {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the breaker did not close: {:?}",
            breaker.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(upstream.hits.load(Ordering::SeqCst) > hits);
    assert_eq!(ping().await.unwrap(), "pong");
}
