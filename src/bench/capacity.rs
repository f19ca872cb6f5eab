//! `bazaar bench capacity`: the highest open-model arrival rate a fresh `bazaar up` sustains
//! within an SLO, and the resident memory of the whole system at that rate.
//!
//! Starts `bazaar up` (this binary, default settings: feeds + SQLite, the demo catalog; rate
//! limits raised out of the way, a known admin password so restocks run) in a temporary data
//! directory on free ports. Then, for each rate in ascending order: `bazaar load`'s default
//! mix for `--step` through the gateway, the SLO judged on that step, and the resident memory
//! (VmRSS) of the supervisor and of every process in `run.json`, summed. 5 s of rest between
//! steps; the first step that misses the SLO is the last one (and is reported).

use std::{fmt::Write as _, time::Duration};

use clap::Args;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{
    process::{bazaar_command, free_ports, ChildProc, TempDir},
    progress::Progress,
    startup::parse_up_line,
};
use crate::{
    cli::{parse_duration, UsageError},
    load::{self, SloList},
    run_file::RunFile,
};

/// Rest between two steps, so one step's backlog does not count against the next.
const SETTLE: Duration = Duration::from_secs(5);
/// How long `bazaar up` may take to report that every service is ready.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long `bazaar up` may take to shut everything down.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// The rate limit of the system tests: limiting runs, but never refuses the load.
const RATE_OUT_OF_THE_WAY: &str = "100000/s,burst=100000";

/// `bazaar bench capacity`.
#[derive(Debug, Clone, Args)]
pub struct CapacityArgs {
    /// Arrival rates to try (scenario starts per second), comma-separated; run in ascending order.
    #[arg(long, default_value = "10,20,40,60,80,100,120,160", value_parser = parse_rates)]
    pub rates: Rates,

    /// How long each rate runs, e.g. `30s`.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub step: Duration,

    /// The objectives each step is judged by (as `bazaar load --slo`).
    #[arg(long, default_value = "p99<300ms,errors<0.1%", value_parser = parse_slo_list)]
    pub slo: SloList,

    /// Seeds every choice of every step's load.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// The rates of `--rates`, ascending, without duplicates.
#[derive(Debug, Clone, PartialEq)]
pub struct Rates(pub Vec<f64>);

/// Parses `10,20,40`: rates above 0 (at most 1,000,000/s), sorted ascending, duplicates dropped.
pub fn parse_rates(s: &str) -> Result<Rates, String> {
    let mut rates = Vec::new();
    for part in s.split(',').map(str::trim) {
        match part.parse::<f64>() {
            Ok(r) if r.is_finite() && r > 0.0 && r <= 1_000_000.0 => rates.push(r),
            _ => return Err(format!("`{part}` is not a rate above 0 (e.g. 10,20,40)")),
        }
    }
    rates.sort_by(f64::total_cmp);
    rates.dedup();
    Ok(Rates(rates))
}

fn parse_slo_list(s: &str) -> Result<SloList, String> {
    load::parse_slos(s).map(SloList)
}

/// What one rate measured.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Scenario starts per second scheduled.
    pub rate: f64,
    /// Scenario starts per second achieved.
    pub achieved_rate: f64,
    /// Requests (final answers) of the step.
    pub requests: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Final answers that were a 5xx or no answer, in percent.
    pub errors_pct: f64,
    /// Arrivals not started because too many scenarios were in flight.
    pub dropped: u64,
    /// Resident memory of the supervisor and every process in `run.json` after the step.
    pub rss_bytes: u64,
    /// Processes whose memory was read (the supervisor included).
    pub processes: usize,
    pub slos: Vec<load::SloResult>,
    pub slo_met: bool,
}

/// Everything `bazaar bench capacity` found.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityReport {
    pub slo: String,
    pub step_s: f64,
    pub seed: u64,
    pub mix: String,
    pub build: &'static str,
    pub cpus: usize,
    pub steps: Vec<Step>,
    /// The highest rate that met the SLO (before the first that missed it).
    pub highest_rate: Option<f64>,
    /// The system's resident memory after the step at `highest_rate`.
    pub highest_rate_rss_bytes: Option<u64>,
}

/// The step of the highest rate met before the first miss (steps in ascending rate order).
pub fn highest_passing(steps: &[Step]) -> Option<&Step> {
    steps.iter().take_while(|s| s.slo_met).last()
}

/// VmRSS of a `/proc/<pid>/status` text, in bytes.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line.split_whitespace().skip(1);
    let kb: u64 = words.next()?.parse().ok()?;
    (words.next()? == "kB").then_some(kb * 1024)
}

/// The resident memory of `pids` summed, and how many could be read.
fn system_rss(pids: impl IntoIterator<Item = u32>) -> (u64, usize) {
    pids.into_iter()
        .filter_map(|pid| {
            parse_vm_rss(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
        })
        .fold((0, 0), |(sum, n), b| (sum + b, n + 1))
}

pub async fn run(args: CapacityArgs) -> anyhow::Result<()> {
    if args.step.is_zero() || args.rates.0.is_empty() {
        return Err(UsageError("--step must be above 0 and --rates not empty".into()).into());
    }
    let progress = Progress::new();
    let dir = TempDir::new("capacity")?;
    let [registry_port, gateway_port] = free_ports::<2>()?;
    let gateway = format!("127.0.0.1:{gateway_port}");
    let admin_password = uuid::Uuid::new_v4().simple().to_string();
    let mut cmd = bazaar_command()?;
    cmd.arg("up")
        .env("BAZAAR_DATA_DIR", dir.path())
        .env(
            "BAZAAR_REGISTRY_URL",
            format!("http://127.0.0.1:{registry_port}"),
        )
        .env("BAZAAR_GATEWAY_ADDR", &gateway)
        .env("BAZAAR_ADMIN_PASSWORD", &admin_password)
        .env("BAZAAR_RATE_LIMIT_USER", RATE_OUT_OF_THE_WAY)
        .env("BAZAAR_RATE_LIMIT_ANON", RATE_OUT_OF_THE_WAY);
    progress.note("capacity: starting bazaar up…");
    // No kill_on_drop: `up` must get SIGTERM (the guard's drop) to stop its children.
    let mut up = ChildProc::spawn("bazaar up", cmd)?;
    let result = match up.wait_for_line(START_TIMEOUT, parse_up_line).await {
        Ok(secs) => {
            progress.note(&format!(
                "capacity: up in {secs:.2} s (gateway on {gateway})"
            ));
            let target = format!("http://{gateway}");
            measure(&args, &mut up, &dir, &target, &admin_password, &progress).await
        }
        Err(e) => Err(e),
    };
    let stopped = up.stop(STOP_GRACE).await;
    let steps = result?;
    stopped?;

    let highest = highest_passing(&steps);
    let report = CapacityReport {
        slo: slo_text(&args.slo),
        step_s: args.step.as_secs_f64(),
        seed: args.seed,
        mix: load::Mix::default().spec(),
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        highest_rate: highest.map(|s| s.rate),
        highest_rate_rss_bytes: highest.map(|s| s.rss_bytes),
        steps,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!();
        print!("{}", report.render());
    }
    Ok(())
}

fn slo_text(slos: &SloList) -> String {
    slos.0
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs the steps until the first that misses the SLO.
async fn measure(
    args: &CapacityArgs,
    up: &mut ChildProc,
    dir: &TempDir,
    target: &str,
    admin_password: &str,
    progress: &Progress,
) -> anyhow::Result<Vec<Step>> {
    let mut steps: Vec<Step> = Vec::new();
    for (i, &rate) in args.rates.0.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(SETTLE).await;
        }
        if let Some(status) = up.exited() {
            anyhow::bail!("bazaar up exited ({status}):\n    {}", up.tail());
        }
        let mut cfg = load::LoadConfig::new(target);
        cfg.rate = rate;
        cfg.duration = args.step;
        cfg.seed = args.seed;
        cfg.admin_password = Some(admin_password.to_owned());
        cfg.slos.clone_from(&args.slo.0);
        cfg.progress = false;
        let report = load::run(cfg, CancellationToken::new()).await?;
        discard_output(up).await;
        let run_file = RunFile::load(dir.path())?;
        let pids = up
            .pid()
            .into_iter()
            .chain(run_file.processes.iter().map(|p| p.pid));
        let (rss_bytes, processes) = system_rss(pids);
        let t = &report.stats.total;
        let step = Step {
            rate,
            achieved_rate: report.achieved_rate,
            requests: t.count,
            p50_ms: t.p50_ms,
            p99_ms: t.p99_ms,
            max_ms: t.max_ms,
            errors_pct: report.stats.errors_pct,
            dropped: report.dropped,
            rss_bytes,
            processes,
            slo_met: report.slos_met(),
            slos: report.slos,
        };
        progress.note(&format!(
            "capacity: {rate}/s for {:.0} s — {:.1}/s achieved, {} requests, p99 {:.1} ms, errors {:.2} %, {} dropped, RSS {:.1} MB ({processes} processes), SLO {}",
            args.step.as_secs_f64(),
            step.achieved_rate,
            step.requests,
            step.p99_ms,
            step.errors_pct,
            step.dropped,
            rss_bytes as f64 / 1e6,
            if step.slo_met { "met" } else { "MISSED" }
        ));
        let met = step.slo_met;
        steps.push(step);
        if !met {
            break;
        }
    }
    Ok(steps)
}

/// Drops the stdout lines of `up` that piled up (it relays every service's log there).
async fn discard_output(up: &mut ChildProc) {
    loop {
        let lines = std::cell::Cell::new(0_u64);
        let _ = up
            .wait_for_line(Duration::ZERO, |_| {
                lines.set(lines.get() + 1);
                None::<()>
            })
            .await;
        if lines.get() == 0 {
            return;
        }
        // A fresh cooperative budget for the next batch.
        tokio::task::yield_now().await;
    }
}

impl CapacityReport {
    /// The table and the verdict line, as printed on a terminal.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Capacity of `bazaar up` (feeds + SQLite, {} build, {} CPUs): default mix, {:.0} s per rate, seed {}",
            self.build, self.cpus, self.step_s, self.seed
        );
        let _ = writeln!(
            out,
            "{:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>8} {:>9}  SLO MET",
            "RATE/S",
            "ACHIEVED",
            "REQUESTS",
            "P50 MS",
            "P99 MS",
            "MAX MS",
            "ERR %",
            "DROPPED",
            "RSS MB"
        );
        for s in &self.steps {
            let _ = writeln!(
                out,
                "{:>8} {:>9.1} {:>9} {:>9.1} {:>9.1} {:>9.1} {:>7.2} {:>8} {:>9.1}  {}",
                s.rate,
                s.achieved_rate,
                s.requests,
                s.p50_ms,
                s.p99_ms,
                s.max_ms,
                s.errors_pct,
                s.dropped,
                s.rss_bytes as f64 / 1e6,
                if s.slo_met { "yes" } else { "no" }
            );
        }
        match (self.highest_rate, self.highest_rate_rss_bytes) {
            (Some(rate), Some(rss)) => {
                let _ = writeln!(
                    out,
                    "highest rate within {}: {rate}/s (system RSS {:.1} MB at that rate)",
                    self.slo,
                    rss as f64 / 1e6
                );
            }
            _ => {
                let _ = writeln!(out, "no rate met the SLO ({})", self.slo);
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn the_defaults_parse_and_flags_are_read() {
        let parse = |args: &[&str]| {
            let argv = ["bazaar", "bench", "capacity"].iter().chain(args);
            match crate::cli::Cli::try_parse_from(argv).map(|c| c.command) {
                Ok(crate::cli::Command::Bench(b)) => match b.what {
                    super::super::BenchWhat::Capacity(a) => Ok(a),
                    other => panic!("parsed as {other:?}"),
                },
                Ok(other) => panic!("parsed as {other:?}"),
                Err(e) => Err(e),
            }
        };
        let a = parse(&[]).unwrap();
        assert_eq!(
            a.rates.0,
            [10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 120.0, 160.0]
        );
        assert_eq!(a.step, Duration::from_secs(30));
        assert_eq!(slo_text(&a.slo), "p99<300ms,errors<0.1%");
        assert!(a.seed == 1 && !a.json);
        let a = parse(&[
            "--rates", "5,10", "--step", "10s", "--slo", "p50<1s", "--json",
        ])
        .unwrap();
        assert_eq!(
            (a.rates.0, a.step),
            (vec![5.0, 10.0], Duration::from_secs(10))
        );
        assert!(a.json && slo_text(&a.slo) == "p50<1000ms");
        assert!(parse(&["--rates", "0"]).is_err() && parse(&["--slo", "p98<1ms"]).is_err());
    }

    #[test]
    fn rates_are_sorted_deduplicated_and_above_zero() {
        assert_eq!(
            parse_rates("10, 20,5,20,0.5").unwrap().0,
            [0.5, 5.0, 10.0, 20.0]
        );
        assert_eq!(parse_rates("160").unwrap().0, [160.0]);
        for bad in ["", "10,,20", "0", "-5", "fast", "10,inf", "2000000"] {
            assert!(parse_rates(bad).is_err(), "{bad}");
        }
    }

    fn step(rate: f64, slo_met: bool) -> Step {
        Step {
            rate,
            achieved_rate: rate,
            requests: 100,
            p50_ms: 1.0,
            p99_ms: 2.0,
            max_ms: 3.0,
            errors_pct: 0.0,
            dropped: 0,
            rss_bytes: (rate as u64) * 1_000_000,
            processes: 11,
            slos: Vec::new(),
            slo_met,
        }
    }

    #[test]
    fn the_highest_rate_is_the_last_met_before_the_first_miss() {
        let rate = |s: &[Step]| highest_passing(s).map(|s| s.rate);
        assert_eq!(
            rate(&[step(10.0, true), step(20.0, true), step(40.0, false)]),
            Some(20.0)
        );
        assert_eq!(rate(&[step(10.0, true), step(20.0, true)]), Some(20.0));
        assert_eq!(rate(&[step(10.0, false)]), None);
        assert_eq!(rate(&[]), None);
        assert_eq!(
            rate(&[step(10.0, true), step(20.0, false), step(40.0, true)]),
            Some(10.0)
        );
    }

    #[test]
    fn vm_rss_is_read_from_a_proc_status_text() {
        let status =
            "Name:\tbazaar\nVmPeak:\t  123456 kB\nVmRSS:\t   10240 kB\nRssAnon:\t    4096 kB\n";
        assert_eq!(parse_vm_rss(status), Some(10_485_760));
        assert_eq!(
            parse_vm_rss("Name:\tkthreadd\nState:\tS (sleeping)\n"),
            None
        );
        assert_eq!(parse_vm_rss("VmRSS:\tmany kB\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\t12\n"), None);
    }

    #[test]
    fn the_report_names_the_highest_rate_or_says_none_met() {
        let mut report = CapacityReport {
            slo: "p99<300ms,errors<0.1%".into(),
            step_s: 30.0,
            seed: 1,
            mix: String::new(),
            build: "debug",
            cpus: 2,
            steps: vec![step(10.0, true), step(20.0, false)],
            highest_rate: Some(10.0),
            highest_rate_rss_bytes: Some(10_000_000),
        };
        let text = report.render();
        assert!(
            text.contains(
                "highest rate within p99<300ms,errors<0.1%: 10/s (system RSS 10.0 MB at that rate)"
            ),
            "{text}"
        );
        assert!(
            text.contains("  yes\n") && text.contains("  no\n"),
            "{text}"
        );
        report.highest_rate = None;
        report.highest_rate_rss_bytes = None;
        assert!(report.render().contains("no rate met the SLO"));
    }
}
