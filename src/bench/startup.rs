//! `bazaar bench startup`: how long a cold `bazaar up` takes to serve, and how much memory
//! each process holds once it has done some work and gone idle.
//!
//! Each run starts `bazaar up` (this binary) in a fresh data directory on free ports, polls
//! the gateway every 10 ms until `GET /api/v1/products` answers 200, puts a little traffic
//! through every service, waits while idle and reads each process's resident memory.

mod warmup;

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use clap::Args;
use rand::{distributions::Alphanumeric, Rng as _};
use serde::Serialize;

use super::{
    process::{bazaar_command, free_ports, ChildProc, TempDir},
    progress::Progress,
    report::{median, Goal, Verdict},
};
use crate::{run_file::RunFile, status::rss_bytes};

/// The goal for a cold start: every service ready.
const READY_GOAL: Duration = Duration::from_secs(2);
/// The goal for each service's resident memory when idle.
const RSS_GOAL_BYTES: u64 = 20 * 1_000_000;
/// How often the gateway is polled during start-up.
const POLL_EVERY: Duration = Duration::from_millis(10);
/// How long a start may take before the run fails.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the stack sits idle after the warm-up before memory is read.
const IDLE: Duration = Duration::from_secs(2);
/// How long `bazaar up` may take to shut everything down.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// A rate limit the warm-up never reaches: it should exercise the services, not the 429 path.
const RATE_OUT_OF_THE_WAY: &str = "100000/s,burst=200000";

/// `bazaar bench startup`.
#[derive(Debug, Clone, Args)]
pub struct StartupArgs {
    /// Cold starts to run; min and median are reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=50))]
    pub runs: u64,

    /// Print one JSON object with every figure instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// What one cold start measured.
#[derive(Debug, Clone, Serialize)]
pub struct RunFigures {
    /// From spawning `bazaar up` to the first 200 of `GET /api/v1/products` through the gateway.
    pub ready_ms: f64,
    /// What `bazaar up` printed ("Bazaar is up in X s"), if it did.
    pub reported_up_s: Option<f64>,
    /// Service → resident memory after the warm-up and idle time.
    pub rss_bytes: BTreeMap<String, u64>,
    /// The supervisor's own resident memory (not a service).
    pub supervisor_rss_bytes: Option<u64>,
    pub warmup: warmup::WarmupFigures,
}

/// Min / median / max of one figure over the runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Option<Spread> {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        Some(Spread {
            min: finite.iter().copied().reduce(f64::min)?,
            median: median(&finite)?,
            max: finite.iter().copied().reduce(f64::max)?,
        })
    }
}

/// Everything `bazaar bench startup` found.
#[derive(Debug, Clone, Serialize)]
pub struct StartupReport {
    pub runs: Vec<RunFigures>,
    pub ready_ms: Option<Spread>,
    pub reported_up_s: Option<Spread>,
    /// Service → resident memory over the runs, in bytes.
    pub rss_bytes: BTreeMap<String, Spread>,
    /// Sum of the services' memory over the runs, in bytes.
    pub total_rss_bytes: Option<Spread>,
    pub goals: Vec<Goal>,
}

pub async fn run(args: StartupArgs) -> anyhow::Result<()> {
    let progress = Progress::new();
    let mut runs = Vec::new();
    for i in 1..=args.runs {
        runs.push(one_run(i, args.runs, &progress).await?);
    }
    let report = StartupReport::build(runs);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!();
        print!("{}", report.render());
    }
    Ok(())
}

async fn one_run(i: u64, of: u64, progress: &Progress) -> anyhow::Result<RunFigures> {
    let phase = format!("run {i}/{of}");
    let dir = TempDir::new("startup")?;
    let [registry_port, gateway_port] = free_ports::<2>()?;
    let gateway = format!("127.0.0.1:{gateway_port}");
    let password: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    let mut cmd = bazaar_command()?;
    cmd.arg("up")
        .env("BAZAAR_DATA_DIR", dir.path())
        .env(
            "BAZAAR_REGISTRY_URL",
            format!("http://127.0.0.1:{registry_port}"),
        )
        .env("BAZAAR_GATEWAY_ADDR", &gateway)
        .env("BAZAAR_ADMIN_PASSWORD", &password)
        .env("BAZAAR_RATE_LIMIT_USER", RATE_OUT_OF_THE_WAY)
        .env("BAZAAR_RATE_LIMIT_ANON", RATE_OUT_OF_THE_WAY);
    // No kill_on_drop: `up` must get SIGTERM (the guard's drop) to stop its children.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let products = format!("http://{gateway}/api/v1/products");

    let spawned = Instant::now();
    let mut up = ChildProc::spawn("bazaar up", cmd)?;
    loop {
        let elapsed = spawned.elapsed();
        progress.update("startup", &phase, elapsed, START_TIMEOUT);
        if let Some(status) = up.exited() {
            anyhow::bail!(
                "bazaar up exited during start-up ({status}):\n    {}",
                up.tail()
            );
        }
        if elapsed > START_TIMEOUT {
            anyhow::bail!(
                "the gateway did not answer 200 within {START_TIMEOUT:?}:\n    {}",
                up.tail()
            );
        }
        let poll = client
            .get(&products)
            .timeout(Duration::from_secs(1))
            .send()
            .await;
        if matches!(&poll, Ok(r) if r.status() == reqwest::StatusCode::OK) {
            break;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    let ready = spawned.elapsed();
    // `up` prints its line after its own readiness checks, which may finish just after ours.
    let reported_up_s = up
        .wait_for_line(Duration::from_secs(5), parse_up_line)
        .await
        .ok();
    progress.done(
        "startup",
        &phase,
        ready,
        START_TIMEOUT,
        &format!(
            "ready in {} ms, `up` says {}",
            ready.as_millis(),
            reported_up_s.map_or("-".into(), |s| format!("{s:.2} s"))
        ),
    );

    let warm = warmup::run(&client, &format!("http://{gateway}")).await?;
    progress.note(&format!(
        "run {i}/{of}: warm-up sent {} requests ({} not as expected); idle {} s",
        warm.requests,
        warm.unexpected,
        IDLE.as_secs()
    ));
    tokio::time::sleep(IDLE).await;

    let run_file = RunFile::load(dir.path()).context("read run.json of the bench's `bazaar up`")?;
    let rss: BTreeMap<String, u64> = run_file
        .processes
        .iter()
        .filter_map(|p| Some((p.service.clone(), rss_bytes(p.pid)?)))
        .collect();
    let supervisor_rss_bytes = up.pid().and_then(rss_bytes);

    up.stop(STOP_GRACE).await?;
    let lingering: Vec<String> = run_file
        .processes
        .iter()
        .filter(|p| crate::run_file::pid_alive(p.pid))
        .map(|p| format!("{} (pid {})", p.service, p.pid))
        .collect();
    if !lingering.is_empty() {
        progress.note(&format!(
            "still running after `bazaar up` stopped: {}",
            lingering.join(", ")
        ));
    }
    Ok(RunFigures {
        ready_ms: ready.as_secs_f64() * 1e3,
        reported_up_s,
        rss_bytes: rss,
        supervisor_rss_bytes,
        warmup: warm,
    })
}

/// The seconds in `  Bazaar is up in 0.81 s (4 services, …)`.
pub fn parse_up_line(line: &str) -> Option<f64> {
    let rest = line.trim_start().strip_prefix("Bazaar is up in ")?;
    let (secs, _) = rest.split_once(" s")?;
    secs.trim().parse().ok().filter(|s: &f64| s.is_finite())
}

impl StartupReport {
    pub fn build(runs: Vec<RunFigures>) -> StartupReport {
        let ready: Vec<f64> = runs.iter().map(|r| r.ready_ms).collect();
        let reported: Vec<f64> = runs.iter().filter_map(|r| r.reported_up_s).collect();
        let mut per_service: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for r in &runs {
            for (service, bytes) in &r.rss_bytes {
                per_service
                    .entry(service.clone())
                    .or_default()
                    .push(*bytes as f64);
            }
        }
        let rss_bytes: BTreeMap<String, Spread> = per_service
            .iter()
            .filter_map(|(s, v)| Some((s.clone(), Spread::of(v)?)))
            .collect();
        let totals: Vec<f64> = runs
            .iter()
            .map(|r| r.rss_bytes.values().sum::<u64>() as f64)
            .collect();
        let ready_ms = Spread::of(&ready);
        let goals = vec![
            ready_goal(ready_ms, runs.len()),
            rss_goal(&rss_bytes, runs.len()),
        ];
        StartupReport {
            ready_ms,
            reported_up_s: Spread::of(&reported),
            rss_bytes,
            total_rss_bytes: Spread::of(&totals),
            goals,
            runs,
        }
    }

    /// The tables and goal lines, as printed on a terminal.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let n = self.runs.len();
        let _ = writeln!(
            out,
            "Cold start of `bazaar up` ({n} run{})",
            if n == 1 { "" } else { "s" }
        );
        let _ = writeln!(out, "{:<44} {:>9} {:>9} {:>9}", "", "MIN", "MEDIAN", "MAX");
        let secs = |ms: f64| format!("{:.2} s", ms / 1e3);
        if let Some(s) = self.ready_ms {
            let _ = writeln!(
                out,
                "{:<44} {:>9} {:>9} {:>9}",
                "spawn → GET /api/v1/products 200",
                secs(s.min),
                secs(s.median),
                secs(s.max)
            );
        }
        match self.reported_up_s {
            Some(s) => {
                let _ = writeln!(
                    out,
                    "{:<44} {:>9} {:>9} {:>9}",
                    "\"Bazaar is up in X s\" (as printed)",
                    secs(s.min * 1e3),
                    secs(s.median * 1e3),
                    secs(s.max * 1e3)
                );
            }
            None => {
                let _ = writeln!(out, "\"Bazaar is up in X s\": not printed");
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Idle memory after the warm-up (resident set, MB; median and max over the runs)"
        );
        let _ = writeln!(out, "{:<28} {:>9} {:>9}", "SERVICE", "MEDIAN", "MAX");
        let mb = |b: f64| format!("{:.1}", b / 1e6);
        for (service, s) in &self.rss_bytes {
            let _ = writeln!(out, "{:<28} {:>9} {:>9}", service, mb(s.median), mb(s.max));
        }
        if let Some(t) = self.total_rss_bytes {
            let _ = writeln!(
                out,
                "{:<28} {:>9} {:>9}",
                format!("total ({} services)", self.rss_bytes.len()),
                mb(t.median),
                mb(t.max)
            );
        }
        let supervisor: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|r| r.supervisor_rss_bytes)
            .map(|b| b as f64)
            .collect();
        if let Some(s) = Spread::of(&supervisor) {
            let _ = writeln!(
                out,
                "{:<28} {:>9} {:>9}",
                "(supervisor: bazaar up)",
                mb(s.median),
                mb(s.max)
            );
        }
        let unexpected: u64 = self.runs.iter().map(|r| r.warmup.unexpected).sum();
        if unexpected > 0 {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "Warm-up answers not as expected: {unexpected} (see --json for the breakdown)"
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "Goals (as measured, every run):");
        for g in &self.goals {
            let _ = writeln!(out, "  {}", g.line());
        }
        out
    }
}

fn ready_goal(ready_ms: Option<Spread>, runs: usize) -> Goal {
    let goal = format!("all ready < {} s", READY_GOAL.as_secs());
    match ready_ms {
        Some(s) => Goal {
            goal,
            verdict: Verdict::from_bool(s.max < READY_GOAL.as_secs_f64() * 1e3),
            detail: format!("slowest of {runs}: {:.2} s", s.max / 1e3),
        },
        None => Goal {
            goal,
            verdict: Verdict::Skipped,
            detail: "no run finished".into(),
        },
    }
}

fn rss_goal(rss: &BTreeMap<String, Spread>, runs: usize) -> Goal {
    let goal = format!("≤ {} MB per service", RSS_GOAL_BYTES / 1_000_000);
    let Some((service, worst)) = rss.iter().max_by(|a, b| a.1.max.total_cmp(&b.1.max)) else {
        return Goal {
            goal,
            verdict: Verdict::Skipped,
            detail: "no memory figures".into(),
        };
    };
    let over: Vec<&str> = rss
        .iter()
        .filter(|(_, s)| s.max > RSS_GOAL_BYTES as f64)
        .map(|(k, _)| k.as_str())
        .collect();
    let mut detail = format!(
        "largest: {service} {:.1} MB over {runs} run{}",
        worst.max / 1e6,
        if runs == 1 { "" } else { "s" }
    );
    if !over.is_empty() {
        let _ = write!(detail, "; over: {}", over.join(", "));
    }
    Goal {
        goal,
        verdict: Verdict::from_bool(over.is_empty()),
        detail,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn figures(ready_ms: f64, rss: &[(&str, u64)]) -> RunFigures {
        RunFigures {
            ready_ms,
            reported_up_s: Some(ready_ms / 1e3 - 0.01),
            rss_bytes: rss.iter().map(|(s, b)| ((*s).to_owned(), *b)).collect(),
            supervisor_rss_bytes: Some(9_000_000),
            warmup: warmup::WarmupFigures::default(),
        }
    }

    #[test]
    fn reads_the_time_up_prints() {
        assert_eq!(
            parse_up_line("  Bazaar is up in 0.81 s (4 services, data in /tmp/x)"),
            Some(0.81)
        );
        assert_eq!(parse_up_line("Bazaar is up in 12.5 s"), Some(12.5));
        assert_eq!(parse_up_line("  gateway | Bazaar is up"), None);
        assert_eq!(parse_up_line("  Bazaar is up in soon s"), None);
    }

    #[test]
    fn the_report_takes_min_median_and_max_over_the_runs() {
        let report = StartupReport::build(vec![
            figures(900.0, &[("gateway", 12_000_000), ("catalog", 10_000_000)]),
            figures(700.0, &[("gateway", 14_000_000), ("catalog", 11_000_000)]),
            figures(800.0, &[("gateway", 13_000_000), ("catalog", 9_000_000)]),
        ]);
        assert_eq!(
            report.ready_ms,
            Some(Spread {
                min: 700.0,
                median: 800.0,
                max: 900.0
            })
        );
        assert_eq!(
            report.rss_bytes["gateway"],
            Spread {
                min: 12e6,
                median: 13e6,
                max: 14e6
            }
        );
        assert_eq!(report.total_rss_bytes.unwrap().median, 22e6);
        assert!(report.goals.iter().all(|g| g.verdict == Verdict::Pass));
        let text = report.render();
        assert!(
            text.contains("all ready < 2 s: PASS (slowest of 3: 0.90 s)"),
            "{text}"
        );
        assert!(
            text.contains("≤ 20 MB per service: PASS (largest: gateway 14.0 MB over 3 runs)"),
            "{text}"
        );
        assert!(text.contains("total (2 services)"), "{text}");
    }

    #[test]
    fn one_slow_run_or_one_large_service_fails_the_goals() {
        let report = StartupReport::build(vec![
            figures(900.0, &[("identity", 35_000_000), ("catalog", 10_000_000)]),
            figures(
                2_300.0,
                &[("identity", 30_000_000), ("catalog", 11_000_000)],
            ),
        ]);
        assert_eq!(report.goals[0].verdict, Verdict::Fail);
        assert_eq!(report.goals[1].verdict, Verdict::Fail);
        assert!(
            report.goals[1].detail.contains("over: identity"),
            "{}",
            report.goals[1].detail
        );
    }
}
