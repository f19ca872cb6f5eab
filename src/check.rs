//! `bazaar check`: compares the final state of every service with what clients were told.
//!
//! Reads each service's `GET /admin/state` (with an admin token), the load's record file, the
//! supervisor's `exits.jsonl`, the services' panic files and, after `bazaar chaos`, its
//! `chaos.json`; then checks the invariants Bazaar promises (docs/reliability.md) and prints
//! each with the number of cases checked and of violations, and a few examples of each
//! violation. Exits 1 on any violation.

mod invariants;
pub mod state;

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use crate::{cli::UsageError, load::record, run_file::RunFile};

pub use invariants::{visa_confirmed_share as invariants_visa_share, Inputs, Invariant};
use state::{ChaosNotes, Source};

/// `bazaar check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The data directory of a `bazaar up` (or `bazaar chaos`) run: services are read on their
    /// own ports from `run.json`, exits and panics from the directory.
    #[arg(long, env = "BAZAAR_DATA_DIR", conflicts_with = "target")]
    pub data_dir: Option<PathBuf>,

    /// A gateway to read the services' states through (`/api/v1/admin/state`); the payment
    /// provider is not behind it, so charges are checked against payment's own records.
    #[arg(long)]
    pub target: Option<String>,

    /// The record file of `bazaar load --record` (default: `<data-dir>/load.jsonl` if present).
    #[arg(long)]
    pub record: Option<PathBuf>,

    /// The admin password (default: `BAZAAR_ADMIN_PASSWORD`, else `<data-dir>/admin-password`).
    #[arg(long)]
    pub admin_password: Option<String>,

    /// Wait up to this long for the system to be quiescent (every order final, outboxes
    /// drained) before checking.
    #[arg(long, default_value = "60s", value_parser = crate::cli::parse_duration)]
    pub wait: Duration,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The outcome of a check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub invariants: Vec<Invariant>,
    /// Share of final order placements answered 2xx during the fault phase (if known).
    pub fault_phase_2xx: Option<f64>,
    pub quiescent: bool,
    /// How long the check waited for quiescence.
    pub waited_s: f64,
}

impl CheckReport {
    pub fn violations(&self) -> u64 {
        self.invariants.iter().map(|i| i.violations).sum()
    }

    /// The table a person reads.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<28} {:>10} {:>11}  notes",
            "invariant", "checked", "violations"
        );
        for i in &self.invariants {
            let _ = writeln!(
                s,
                "{:<28} {:>10} {:>11}  {}",
                i.name,
                i.checked,
                i.violations,
                i.notes.join("; ")
            );
        }
        if let Some(share) = self.fault_phase_2xx {
            let _ = writeln!(
                s,
                "order placements answered 2xx during faults: {:.1}% (goal ≥ 90%)",
                share * 100.0
            );
        }
        if self.quiescent {
            let _ = writeln!(
                s,
                "quiescent (every order final, outboxes drained, consumers caught up) after {:.1} s",
                self.waited_s
            );
        } else {
            let _ = writeln!(
                s,
                "NOT quiescent after {:.1} s (see saga consistency and messaging)",
                self.waited_s
            );
        }
        let bad: Vec<&Invariant> = self
            .invariants
            .iter()
            .filter(|i| i.violations > 0)
            .collect();
        if bad.is_empty() {
            let _ = writeln!(s, "every invariant holds");
        } else {
            for i in bad {
                let _ = writeln!(s, "\n{} — {} violation(s), e.g.:", i.name, i.violations);
                for e in &i.examples {
                    let _ = writeln!(s, "  - {e}");
                }
            }
        }
        s
    }
}

/// What `check` needs to know to reach a shop.
pub struct Target {
    pub source: Source,
    pub gateway: String,
    pub data_dir: Option<PathBuf>,
    pub admin_password: String,
    pub record: Option<PathBuf>,
}

impl Target {
    pub fn from_args(args: &CheckArgs) -> anyhow::Result<Target> {
        let password = |dir: Option<&PathBuf>| -> anyhow::Result<String> {
            if let Some(p) = &args.admin_password {
                return Ok(p.clone());
            }
            if let Some(p) = std::env::var("BAZAAR_ADMIN_PASSWORD")
                .ok()
                .filter(|p| !p.is_empty())
            {
                return Ok(p);
            }
            if let Some(dir) = dir {
                if let Ok(p) = std::fs::read_to_string(dir.join("admin-password")) {
                    return Ok(p.trim().to_owned());
                }
            }
            Err(UsageError(
                "no admin password: pass --admin-password or set BAZAAR_ADMIN_PASSWORD".into(),
            )
            .into())
        };
        match (&args.data_dir, &args.target) {
            (_, Some(url)) => Ok(Target {
                source: Source::Gateway(url.clone()),
                gateway: url.clone(),
                data_dir: None,
                admin_password: password(None)?,
                record: args.record.clone(),
            }),
            (Some(dir), None) => {
                let run = RunFile::load(dir)?;
                let record = args.record.clone().or_else(|| {
                    let p = dir.join("load.jsonl");
                    p.exists().then_some(p)
                });
                Ok(Target {
                    gateway: run.gateway_url.clone(),
                    source: Source::Direct(run),
                    data_dir: Some(dir.clone()),
                    admin_password: password(Some(dir))?,
                    record,
                })
            }
            (None, None) => Err(UsageError("pass --data-dir DIR or --target URL".into()).into()),
        }
    }
}

pub async fn command(args: CheckArgs) -> anyhow::Result<()> {
    let target = Target::from_args(&args)?;
    let report = run(&target, args.wait).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    if report.violations() > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// Waits for quiescence (up to `wait`), then checks every invariant.
pub async fn run(target: &Target, wait: Duration) -> anyhow::Result<CheckReport> {
    let token = state::admin_token(&target.gateway, &target.admin_password).await?;
    let began = tokio::time::Instant::now();
    let deadline = began + wait;
    // The services are read one after another, so one reading can mix a moment before an
    // event with a moment after it (an order read as shipped after its stock was read as
    // still reserved). Quiet means two readings a second apart that are quiescent and equal.
    let mut last_quiet: Option<String> = None;
    let (states, quiescent) = loop {
        let states = state::fetch_all(&target.source, &token).await?;
        let quiet = invariants::quiescent(&states);
        let print = quiet.then(|| invariants::fingerprint(&states));
        if quiet && print == last_quiet {
            break (states, true);
        }
        if tokio::time::Instant::now() >= deadline {
            break (states, false);
        }
        last_quiet = print;
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let (started_unix_ms, attempts) = match &target.record {
        Some(path) => {
            let (header, attempts) = record::read_records(path)
                .with_context(|| format!("read the record {}", path.display()))?;
            (i64::try_from(header.started_unix_ms).unwrap_or(0), attempts)
        }
        None => (0, Vec::new()),
    };
    let (notes, exits, panics) = match &target.data_dir {
        Some(dir) => {
            let notes: Option<ChaosNotes> = std::fs::read_to_string(ChaosNotes::path(dir))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
            let exits = std::fs::read_to_string(crate::up::exits_path(dir))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<crate::up::ExitRecord>(l).ok())
                .collect();
            (
                notes,
                exits,
                bazaar_runtime::panics::read_all(&dir.join("panics")),
            )
        }
        None => (None, Vec::new(), Vec::new()),
    };
    let inputs = Inputs {
        states: &states,
        attempts: &attempts,
        record_started_unix_ms: started_unix_ms,
        notes: notes.as_ref(),
        exits: &exits,
        panics: &panics,
        has_record: target.record.is_some(),
    };
    Ok(CheckReport {
        invariants: invariants::check_all(&inputs),
        fault_phase_2xx: invariants::fault_phase_2xx(&inputs),
        quiescent,
        waited_s: began.elapsed().as_secs_f64(),
    })
}
