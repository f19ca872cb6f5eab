//! What the resilience stack costs per call when nothing goes wrong.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use tower::{Layer, Service, ServiceExt};

use crate::{
    BreakerConfig, BulkheadLayer, CircuitBreaker, CircuitBreakerLayer, Idempotent, LiftLayer,
    RetryLayer, RetryPolicy, TimeoutLayer,
};

/// Per-call cost of `timeout → retry → breaker → bulkhead` (closed breaker, free slots,
/// no errors) around a no-op service, against the bare service.
#[derive(Debug, Clone, PartialEq)]
pub struct OverheadReport {
    /// Calls measured on each side.
    pub iterations: u64,
    /// Nanoseconds per call through the bare no-op service.
    pub bare_ns_per_call: f64,
    /// Nanoseconds per call through the full stack.
    pub stack_ns_per_call: f64,
    /// `stack - bare`: what the layers add to every call.
    pub overhead_ns_per_call: f64,
    /// `stack / bare`.
    pub ratio: f64,
}

impl std::fmt::Display for OverheadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "resilience stack overhead over {} calls: bare {:.1} ns/call, \
             timeout→retry→breaker→bulkhead {:.1} ns/call (+{:.1} ns/call, {:.1}×)",
            self.iterations,
            self.bare_ns_per_call,
            self.stack_ns_per_call,
            self.overhead_ns_per_call,
            self.ratio
        )
    }
}

/// A request the retry layer may repeat (so the measured path includes its clone).
#[derive(Debug, Clone, Copy)]
struct Probe(u64);

impl Idempotent for Probe {
    fn is_idempotent(&self) -> bool {
        true
    }
}

/// Measures [`OverheadReport`] over `iterations` calls each way, on a private
/// single-threaded runtime in its own thread (so it can be called from sync or async code).
pub fn bench_overhead(iterations: u64) -> std::io::Result<OverheadReport> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()?;
                Ok(runtime.block_on(measure_overhead(iterations)))
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the benchmark thread panicked")))
    })
}

/// Measures [`OverheadReport`] on the current tokio runtime (which needs its timer).
pub async fn measure_overhead(iterations: u64) -> OverheadReport {
    let iterations = iterations.max(1);
    let bare = tower::service_fn(|p: Probe| async move { Ok::<u64, Infallible>(p.0) });
    let breaker = CircuitBreaker::new("bench-overhead", BreakerConfig::default());
    let stack = TimeoutLayer::new(Duration::from_secs(10)).layer(
        RetryLayer::new(RetryPolicy::default()).layer(CircuitBreakerLayer::new(breaker).layer(
            BulkheadLayer::new(64, Duration::from_millis(100)).layer(LiftLayer::new().layer(bare)),
        )),
    );

    // Warm caches, the allocator and the timer wheel before timing either side.
    let warmup = (iterations / 10).clamp(1, 10_000);
    run(bare, warmup).await;
    run(stack.clone(), warmup).await;

    let bare_ns = run(bare, iterations).await;
    let stack_ns = run(stack, iterations).await;
    let per_call = |total: Duration| total.as_nanos() as f64 / iterations as f64;
    let bare_ns_per_call = per_call(bare_ns);
    let stack_ns_per_call = per_call(stack_ns);
    OverheadReport {
        iterations,
        bare_ns_per_call,
        stack_ns_per_call,
        overhead_ns_per_call: stack_ns_per_call - bare_ns_per_call,
        ratio: if bare_ns_per_call > 0.0 {
            stack_ns_per_call / bare_ns_per_call
        } else {
            f64::INFINITY
        },
    }
}

async fn run<S>(mut service: S, iterations: u64) -> Duration
where
    S: Service<Probe>,
{
    // Wall-clock on purpose: this measures CPU cost, not tokio's (maybe paused) clock.
    let start = std::time::Instant::now();
    for i in 0..iterations {
        if let Ok(ready) = service.ready().await {
            let _ = black_box(ready.call(Probe(black_box(i))).await.is_ok());
        }
    }
    start.elapsed()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn reports_both_sides_and_the_ratio() {
        let report = bench_overhead(200).unwrap();
        assert_eq!(report.iterations, 200);
        assert!(report.bare_ns_per_call > 0.0);
        assert!(report.stack_ns_per_call > 0.0);
        assert!(report.ratio > 0.0);
        assert!(report.to_string().contains("ns/call"));
    }
}
