//! `bazaar bench resilience`: what the client resilience stack (timeout → retry → circuit
//! breaker → bulkhead) costs per call when nothing goes wrong, against the bare service,
//! measured by `bazaar_resilience::bench_overhead` on a private single-threaded runtime.

use std::fmt::Write as _;

use anyhow::Context as _;
use bazaar_resilience::OverheadReport;
use clap::Args;
use serde::Serialize;

use super::{
    progress::Progress,
    report::{format_count, Goal, Verdict},
};

/// The goal for what the stack adds to every call.
pub const OVERHEAD_GOAL_NS: f64 = 1_000.0;

/// `bazaar bench resilience`.
#[derive(Debug, Clone, Args)]
pub struct ResilienceArgs {
    /// Calls measured through each side (the bare service and the stack).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub iterations: u64,

    /// Print one JSON object with every figure instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The figures and the goal, as printed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResilienceReport {
    pub iterations: u64,
    /// ns per call through the bare no-op service.
    pub bare_ns_per_call: f64,
    /// ns per call through timeout → retry → breaker → bulkhead around it (closed breaker,
    /// free bulkhead slots, no errors).
    pub stack_ns_per_call: f64,
    /// `stack - bare`.
    pub overhead_ns_per_call: f64,
    /// `stack / bare`.
    pub ratio: f64,
    /// `release` or `debug`.
    pub build: &'static str,
    pub goals: Vec<Goal>,
}

impl ResilienceReport {
    pub fn build(measured: &OverheadReport, build: &'static str) -> ResilienceReport {
        let overhead = measured.overhead_ns_per_call;
        let mut detail = format!("+{overhead:.1} ns/call over the bare service");
        if build == "debug" {
            detail.push_str(", debug build");
        }
        ResilienceReport {
            iterations: measured.iterations,
            bare_ns_per_call: measured.bare_ns_per_call,
            stack_ns_per_call: measured.stack_ns_per_call,
            overhead_ns_per_call: overhead,
            ratio: measured.ratio,
            build,
            goals: vec![Goal {
                goal: "resilience stack overhead < 1 µs per call".into(),
                verdict: if overhead.is_finite() {
                    Verdict::from_bool(overhead < OVERHEAD_GOAL_NS)
                } else {
                    Verdict::Skipped
                },
                detail,
            }],
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Resilience stack overhead: {} calls each way on a single-threaded runtime, {} build",
            format_count(self.iterations as f64),
            self.build
        );
        let _ = writeln!(
            out,
            "(a no-op tower service, then timeout → retry → circuit breaker (closed) → bulkhead (free slots) around it; no errors)"
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "{:<44} {:>12}", "", "NS/CALL");
        let _ = writeln!(
            out,
            "{:<44} {:>12.1}",
            "bare service", self.bare_ns_per_call
        );
        let _ = writeln!(
            out,
            "{:<44} {:>12.1}",
            "timeout → retry → breaker → bulkhead", self.stack_ns_per_call
        );
        let _ = writeln!(
            out,
            "{:<44} {:>12}   ({:.1}× the bare service)",
            "overhead per call",
            format!("+{:.1}", self.overhead_ns_per_call),
            self.ratio
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "Goals (as measured):");
        for g in &self.goals {
            let _ = writeln!(out, "  {}", g.line());
        }
        out
    }
}

pub async fn run(args: ResilienceArgs) -> anyhow::Result<()> {
    let progress = Progress::new();
    progress.note(&format!(
        "resilience: {} calls through the bare service, then through the stack…",
        format_count(args.iterations as f64)
    ));
    let iterations = args.iterations;
    // The measurement owns a thread and a runtime of its own; keep it off this runtime's
    // worker threads.
    let measured =
        tokio::task::spawn_blocking(move || bazaar_resilience::bench_overhead(iterations))
            .await
            .context("the measurement thread failed")?
            .context("measure the resilience stack")?;
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let report = ResilienceReport::build(&measured, build);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!();
        print!("{}", report.render());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn measured(bare: f64, stack: f64) -> OverheadReport {
        OverheadReport {
            iterations: 1_000_000,
            bare_ns_per_call: bare,
            stack_ns_per_call: stack,
            overhead_ns_per_call: stack - bare,
            ratio: stack / bare,
        }
    }

    #[test]
    fn the_table_shows_both_sides_the_overhead_and_the_verdict() {
        let report = ResilienceReport::build(&measured(12.5, 262.5), "release");
        assert_eq!(report.goals[0].verdict, Verdict::Pass);
        let text = report.render();
        assert!(text.contains("1,000,000 calls each way"), "{text}");
        let row = |label: &str| {
            text.lines()
                .find(|l| l.starts_with(label))
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>()
        };
        assert_eq!(row("bare service"), ["bare", "service", "12.5"]);
        assert_eq!(row("timeout → retry")[7], "262.5");
        assert_eq!(
            row("overhead per call")[3..],
            ["+250.0", "(21.0×", "the", "bare", "service)"]
        );
        assert!(
            text.contains(
                "resilience stack overhead < 1 µs per call: PASS (+250.0 ns/call over the bare service)"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_microsecond_or_more_fails_the_goal() {
        let report = ResilienceReport::build(&measured(10.0, 1_010.0), "debug");
        assert_eq!(report.goals[0].verdict, Verdict::Fail);
        assert!(report.goals[0].detail.ends_with("debug build"));
    }

    #[test]
    fn the_json_has_every_figure_and_the_goal() {
        let json = serde_json::to_value(ResilienceReport::build(&measured(10.0, 110.0), "release"))
            .unwrap();
        assert_eq!(json["iterations"], 1_000_000);
        assert_eq!(json["bare_ns_per_call"], 10.0);
        assert_eq!(json["stack_ns_per_call"], 110.0);
        assert_eq!(json["overhead_ns_per_call"], 100.0);
        assert_eq!(json["ratio"], 11.0);
        assert_eq!(json["goals"][0]["verdict"], "pass");
    }

    #[test]
    fn iterations_are_read_and_bounded() {
        use clap::Parser as _;
        let parse = |args: &[&str]| {
            let argv = ["bazaar", "bench", "resilience"].iter().chain(args.iter());
            crate::cli::Cli::try_parse_from(argv).map(|cli| match cli.command {
                crate::cli::Command::Bench(b) => match b.what {
                    super::super::BenchWhat::Resilience(a) => a,
                    other => panic!("parsed as {other:?}"),
                },
                other => panic!("parsed as {other:?}"),
            })
        };
        let a = parse(&[]).unwrap();
        assert_eq!((a.iterations, a.json), (1_000_000, false));
        let a = parse(&["--iterations", "5000", "--json"]).unwrap();
        assert_eq!((a.iterations, a.json), (5000, true));
        assert!(parse(&["--iterations", "0"]).is_err());
    }
}
