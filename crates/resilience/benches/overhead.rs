//! `cargo bench -p bazaar-resilience --bench overhead [iterations]`: per-call cost of the
//! closed-state `timeout → retry → breaker → bulkhead` stack around a no-op service.

use std::process::ExitCode;

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; take the first plain number as the iteration count.
    let iterations = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<u64>().ok())
        .unwrap_or(1_000_000);
    match bazaar_resilience::bench_overhead(iterations) {
        Ok(report) => {
            println!("{report}");
            let verdict = if report.overhead_ns_per_call < 1_000.0 {
                "within"
            } else {
                "OVER"
            };
            println!(
                "goal: < 1000 ns/call overhead — {verdict} ({:.1} ns/call)",
                report.overhead_ns_per_call
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            ExitCode::FAILURE
        }
    }
}
