//! `bazaar load`: an open-model HTTP load generator for the shop.
//!
//! Scenario *starts* arrive at a constant rate (arrival `i` at `i / rate` s), each started as
//! its own task at its due time whatever the system's speed, and every request is timed from
//! when it was due — its arrival, or the end of the step before it — so a stalled system
//! shows its real latency instead of slowing the load down (no coordinated omission). A
//! seeded mix picks each arrival's scenario (browse, orders with each test card, cancel,
//! order list, overview, register, restock), its customer, products and quantities. The
//! client retries like a real one: the same request (same `Idempotency-Key`, the same bytes)
//! after a transport error or a 5xx with exponential backoff, after a 429 once `Retry-After`
//! has passed, after a 401 once it logged in again — and a restock (not idempotent) never
//! after an answer that leaves its effect unknown.
//!
//! The library API is for other commands (`bazaar chaos` runs a load while it injects
//! faults): [`LoadConfig`] and [`run`] produce a [`LoadReport`]; with `record` set, every
//! attempt is written as JSON lines, read back with [`read_records`], and [`summarize`]
//! computes the report's figures for any time window of such a record.

mod client;
mod driver;
pub mod mix;
pub mod record;
mod report;
mod retry;
mod scenarios;
mod schedule;
mod setup;
mod slo;
mod stats;

use std::{path::PathBuf, time::Duration};

use clap::Args;
use tokio_util::sync::CancellationToken;

#[allow(
    unused_imports,
    reason = "the library API of `bazaar load`, for `bazaar chaos`"
)]
pub use self::{
    driver::{run, LoadConfig},
    mix::{Mix, Scenario, DEFAULT_MIX},
    record::{read_records, Attempt, Header, Item, Op},
    report::LoadReport,
    retry::TransportError,
    slo::{parse_slos, Slo, SloResult},
    stats::{summarize, OpStats, WindowStats},
};
use crate::{cli::parse_duration, run_file::RunFile};

/// The gateway when no `--target` is given and no `run.json` names one.
const DEFAULT_TARGET: &str = "http://127.0.0.1:8080";

/// `bazaar load`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// The gateway's base URL. Default: `gateway_url` of `<data-dir>/run.json` when it
    /// exists, else http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,

    /// Scenario starts per second (open model: they start on time however slow the shop is).
    #[arg(long, default_value_t = 10.0, value_parser = parse_rate)]
    pub rate: f64,

    /// How long scenarios keep starting, e.g. `60s`, `5m`.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,

    /// The scenario mix, `name=weight,…`: browse, order_visa, order_declined, order_timeout,
    /// order_ship_fail, cancel, orders, overview, register, restock.
    #[arg(long, value_name = "SPEC", default_value = DEFAULT_MIX, value_parser = Mix::parse)]
    pub mix: Mix,

    /// Seeds every choice (scenario, customer, products, quantities, waits).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Customers registered (and logged in) before the run.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub users: u64,

    /// Write every attempt of every request to FILE as JSON lines.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Objectives, e.g. `p99<300ms,errors<1%` (p50, p90, p99, p999, max in ms or s; errors:
    /// final answers that were a 5xx or no answer, in %). A missed one makes the exit code 1.
    #[arg(long, value_name = "SPEC", value_parser = parse_slo_list)]
    pub slo: Option<SloList>,

    /// The password of admin@bazaar.local (for the restock scenario). Default:
    /// BAZAAR_ADMIN_PASSWORD, else the file `<data-dir>/admin-password`.
    #[arg(long, env = "BAZAAR_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// The data directory of the running `bazaar up` (for `run.json` and `admin-password`).
    #[arg(long, env = "BAZAAR_DATA_DIR", default_value = ".bazaar")]
    pub data_dir: PathBuf,

    /// Scenarios in flight at most; arrivals beyond that are dropped and counted.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_in_flight: u64,
}

/// The objectives of `--slo`.
#[derive(Debug, Clone, PartialEq)]
pub struct SloList(pub Vec<Slo>);

fn parse_slo_list(s: &str) -> Result<SloList, String> {
    parse_slos(s).map(SloList)
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 1_000_000.0 => Ok(r),
        _ => Err(format!(
            "`{s}` is not a rate above 0 (scenarios per second, e.g. 20 or 0.5)"
        )),
    }
}

/// `bazaar load` from the command line: runs, prints the report, fails when an SLO is missed.
pub async fn command(args: LoadArgs) -> anyhow::Result<()> {
    let target = match args.target {
        Some(t) => t,
        None if RunFile::path(&args.data_dir).exists() => {
            RunFile::load(&args.data_dir)?.gateway_url
        }
        None => DEFAULT_TARGET.to_owned(),
    };
    let admin_password = args.admin_password.filter(|p| !p.is_empty()).or_else(|| {
        std::fs::read_to_string(args.data_dir.join("admin-password"))
            .ok()
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
    });
    let mut cfg = LoadConfig::new(target);
    cfg.rate = args.rate;
    cfg.duration = args.duration;
    cfg.mix = args.mix;
    cfg.seed = args.seed;
    cfg.users = usize::try_from(args.users)?;
    cfg.record = args.record;
    cfg.admin_password = admin_password;
    cfg.slos = args.slo.map(|s| s.0).unwrap_or_default();
    cfg.max_in_flight = usize::try_from(args.max_in_flight)?;

    // Ctrl-C ends the schedule early; the scenarios in flight finish and the report is printed.
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    let signal = tokio::spawn(async move {
        bazaar_runtime::shutdown::signal().await;
        eprintln!("load: stopping: no new scenarios; waiting for those in flight");
        on_signal.cancel();
    });
    let result = run(cfg, stop).await;
    signal.abort();
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_table());
    }
    if !report.slos_met() {
        let missed: Vec<&str> = report
            .slos
            .iter()
            .filter(|s| !s.met)
            .map(|s| s.slo.as_str())
            .collect();
        anyhow::bail!("SLO missed: {}", missed.join(", "));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn parse(args: &[&str]) -> Result<LoadArgs, clap::Error> {
        let argv = ["bazaar", "load"].iter().chain(args.iter());
        match crate::cli::Cli::try_parse_from(argv)?.command {
            crate::cli::Command::Load(a) => Ok(a),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn the_defaults_are_the_default_mix_at_10_per_second_for_a_minute() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.rate, 10.0);
        assert_eq!(a.duration, Duration::from_secs(60));
        assert_eq!(a.mix, Mix::default());
        assert_eq!(a.seed, 1);
        assert_eq!(a.users, 20);
        assert_eq!(a.max_in_flight, 10_000);
        assert!(a.slo.is_none() && a.record.is_none() && a.target.is_none() && !a.json);
    }

    #[test]
    fn flags_are_read_and_bad_ones_are_usage_errors() {
        let a = parse(&[
            "--target",
            "http://127.0.0.1:9",
            "--rate",
            "20",
            "--duration",
            "5s",
            "--mix",
            "browse=1,orders=2",
            "--slo",
            "p99<300ms,errors<1%",
            "--record",
            "out.jsonl",
            "--json",
        ])
        .unwrap();
        assert_eq!(a.rate, 20.0);
        assert_eq!(a.mix.total(), 3);
        assert_eq!(a.slo.unwrap().0.len(), 2);
        let err = parse(&["--mix", "browse=1,dance=2"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(
            err.to_string().contains("unknown scenario `dance`"),
            "{err}"
        );
        let err = parse(&["--slo", "p98<1ms"]).unwrap_err();
        assert!(err.to_string().contains("unknown measure `p98`"), "{err}");
        assert!(parse(&["--rate", "0"]).is_err());
        assert!(parse(&["--rate", "fast"]).is_err());
        assert!(parse(&["--users", "0"]).is_err());
    }
}
