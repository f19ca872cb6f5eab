//! The run: setup, then the open-model schedule — each arrival started as its own task at
//! its due time, whatever the system's speed — then the report.

use std::{
    collections::BTreeMap,
    io::IsTerminal as _,
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    client::{Account, Client},
    mix::{Mix, Scenario},
    record::{self, Header},
    report::LoadReport,
    scenarios::{vocabulary, World},
    schedule::Schedule,
    setup::{self, ADMIN_EMAIL},
    slo::Slo,
    stats::Aggregator,
};
use crate::cli::UsageError;

/// Everything a load run needs. Build it with [`LoadConfig::new`] and change what differs.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The gateway's base URL, e.g. `http://127.0.0.1:8080`.
    pub target: String,
    /// Scenario starts per second.
    pub rate: f64,
    /// How long the schedule runs.
    pub duration: Duration,
    pub mix: Mix,
    /// Seeds every choice of every arrival.
    pub seed: u64,
    /// Customers registered before the run, among whom arrivals are spread.
    pub users: usize,
    /// Write every attempt to this file (JSON lines).
    pub record: Option<PathBuf>,
    /// The password of `admin@bazaar.local`; without it the restock scenario is dropped.
    pub admin_password: Option<String>,
    /// Objectives judged on the whole run.
    pub slos: Vec<Slo>,
    /// Scenarios in flight at most; an arrival beyond that is dropped and counted.
    pub max_in_flight: usize,
    /// The client's limit for one attempt.
    pub request_timeout: Duration,
    /// Print setup notes and progress on stderr.
    pub progress: bool,
}

impl LoadConfig {
    /// The defaults of `bazaar load` against `target`: 10 scenarios/s for 60 s, the default
    /// mix, seed 1, 20 customers, no record, no admin password, no SLOs.
    pub fn new(target: impl Into<String>) -> LoadConfig {
        LoadConfig {
            target: target.into(),
            rate: 10.0,
            duration: Duration::from_secs(60),
            mix: Mix::default(),
            seed: 1,
            users: 20,
            record: None,
            admin_password: None,
            slos: Vec::new(),
            max_in_flight: 10_000,
            request_timeout: Duration::from_secs(10),
            progress: true,
        }
    }
}

/// Counters the dispatcher, the scenarios and the progress line share.
#[derive(Default)]
struct Counters {
    started: AtomicU64,
    in_flight: AtomicU64,
    dropped: AtomicU64,
    per_scenario: [AtomicU64; Scenario::ALL.len()],
}

/// Runs the load described by `cfg` against its target and reports it.
///
/// Setup (products, customers, the admin's token) is not measured. Then arrival `i` is
/// started at `i / rate` s after t = 0, each as its own task, and every request is timed
/// from when it was due, so a stalled system shows its real latency. `stop` ends the
/// schedule early; scenarios in flight then finish within their retry budget. When `cfg`
/// records, the file is complete when this returns.
pub async fn run(cfg: LoadConfig, stop: CancellationToken) -> anyhow::Result<LoadReport> {
    if !(cfg.rate.is_finite() && cfg.rate > 0.0) {
        return Err(UsageError(format!("--rate must be above 0 (got {})", cfg.rate)).into());
    }
    if cfg.duration.is_zero() {
        return Err(UsageError("--duration must be above 0".into()).into());
    }
    if cfg.users == 0 {
        return Err(UsageError("--users must be at least 1".into()).into());
    }
    let base = cfg.target.trim_end_matches('/').to_owned();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(UsageError(format!("--target `{}` must be an http:// URL", cfg.target)).into());
    }
    let note = |m: &str| {
        if cfg.progress {
            eprintln!("load: {m}");
        }
    };
    let mut notices = Vec::new();
    let mut mix = cfg.mix.clone();
    if mix.weight(Scenario::Restock) > 0 && cfg.admin_password.is_none() {
        let n = "no admin password (--admin-password, BAZAAR_ADMIN_PASSWORD or <data-dir>/admin-password): the restock scenario is dropped from the mix".to_owned();
        note(&n);
        notices.push(n);
        mix = mix.without(Scenario::Restock).ok_or_else(|| {
            UsageError("the mix has only restock, which needs an admin password".into())
        })?;
    }

    let http = reqwest::Client::builder()
        .timeout(cfg.request_timeout)
        .connect_timeout(cfg.request_timeout.min(Duration::from_secs(5)))
        .no_proxy()
        .build()
        .context("cannot build the HTTP client")?;

    // Setup: not measured, not recorded.
    let setup_began = Instant::now();
    let products = setup::fetch_products(&http, &base)
        .await
        .with_context(|| format!("cannot list the products of {base}; is `bazaar up` running?"))?;
    if products.is_empty() {
        anyhow::bail!("{base} has no products to browse or order (start `bazaar up` without --no-demo, or add some)");
    }
    let admin = match (&cfg.admin_password, mix.weight(Scenario::Restock) > 0) {
        (Some(password), true) => {
            let token = setup::login(&http, &base, ADMIN_EMAIL, password)
                .await
                .context("cannot log in as admin@bazaar.local for the restock scenario")?;
            Some(Account::new(
                None,
                ADMIN_EMAIL.to_owned(),
                password.clone(),
                token,
            ))
        }
        _ => None,
    };
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let users = setup::register_customers(&http, &base, cfg.users, cfg.seed, &run_id)
        .await
        .context("cannot register the customers")?;
    note(&format!(
        "{} products, {} customers{} ready in {:.1} s; {} scenarios/s for {:.1} s against {base}",
        products.len(),
        users.len(),
        if admin.is_some() {
            " and the admin"
        } else {
            ""
        },
        setup_began.elapsed().as_secs_f64(),
        cfg.rate,
        cfg.duration.as_secs_f64()
    ));

    // t = 0.
    let t0 = Instant::now();
    let started_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let (sink, writer) = match &cfg.record {
        Some(path) => {
            let header = Header {
                seed: cfg.seed,
                target: base.clone(),
                rate: cfg.rate,
                started_unix_ms,
                duration_s: cfg.duration.as_secs_f64(),
                mix: mix.spec(),
            };
            let (sink, writer) = record::start(path, &header).await?;
            (Some(sink), Some(writer))
        }
        None => (None, None),
    };
    let stats = Arc::new(Mutex::new(Aggregator::new()));
    let (categories, words) = vocabulary(&products);
    let products_len = products.len();
    let world = Arc::new(World {
        client: Client::new(http, base.clone(), t0, stats.clone(), sink),
        mix: mix.clone(),
        seed: cfg.seed,
        run_id,
        users,
        admin,
        products,
        categories,
        words,
    });

    let schedule = Schedule::new(cfg.rate, cfg.duration);
    let counters = Arc::new(Counters::default());
    let done = CancellationToken::new();
    let progress = (cfg.progress && std::io::stderr().is_terminal()).then(|| {
        tokio::spawn(live_progress(
            t0,
            cfg.duration,
            counters.clone(),
            stats.clone(),
            done.clone(),
        ))
    });

    let tracker = TaskTracker::new();
    let max_in_flight = cfg.max_in_flight.max(1) as u64;
    let mut stopped_early = false;
    for i in 0..schedule.len() {
        let due = t0 + schedule.at(i);
        tokio::select! {
            biased;
            () = stop.cancelled() => {
                stopped_early = true;
                break;
            }
            () = tokio::time::sleep_until(due.into()) => {}
        }
        if counters.in_flight.load(Ordering::Relaxed) >= max_in_flight {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        counters.in_flight.fetch_add(1, Ordering::Relaxed);
        counters.started.fetch_add(1, Ordering::Relaxed);
        let world = world.clone();
        let counters = counters.clone();
        tracker.spawn(async move {
            let scenario = world.run(i, due).await;
            if let Some(n) = Scenario::ALL
                .iter()
                .position(|s| *s == scenario)
                .and_then(|p| counters.per_scenario.get(p))
            {
                n.fetch_add(1, Ordering::Relaxed);
            }
            counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        });
    }
    let schedule_s = if stopped_early {
        t0.elapsed().as_secs_f64()
    } else {
        cfg.duration.as_secs_f64()
    };
    tracker.close();
    tracker.wait().await;
    let elapsed = t0.elapsed();
    done.cancel();
    if let Some(p) = progress {
        let _ = p.await;
    }
    // The scenarios are done: this was the last holder of the record sink.
    drop(world);
    let recorded = match writer {
        Some(w) => Some(w.finish().await?),
        None => None,
    };

    let aggregate = match stats.lock() {
        Ok(s) => s.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    let window = aggregate.stats(0.0, elapsed.as_secs_f64() * 1000.0);
    let started = counters.started.load(Ordering::Relaxed);
    let dropped = counters.dropped.load(Ordering::Relaxed);
    let scenarios: BTreeMap<String, u64> = Scenario::ALL
        .iter()
        .zip(&counters.per_scenario)
        .map(|(s, n)| (s.as_str().to_owned(), n.load(Ordering::Relaxed)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let slos = cfg.slos.iter().map(|s| s.check(&window)).collect();
    if cfg.progress {
        eprintln!(
            "load: {:.1} s, {started} scenarios started ({:.2}/s), {dropped} dropped, {} requests, {} errors, p99 {:.1} ms{}",
            elapsed.as_secs_f64(),
            started as f64 / schedule_s.max(1e-9),
            window.total.count,
            window.errors,
            window.total.p99_ms,
            recorded.map_or_else(String::new, |n| format!(", {n} attempts recorded"))
        );
    }
    Ok(LoadReport {
        target: base,
        seed: cfg.seed,
        rate: cfg.rate,
        duration_s: cfg.duration.as_secs_f64(),
        mix: mix.spec(),
        users: cfg.users,
        products: products_len,
        scheduled: schedule.len(),
        started,
        dropped,
        stopped_early,
        schedule_s,
        achieved_rate: started as f64 / schedule_s.max(1e-9),
        elapsed_s: elapsed.as_secs_f64(),
        scenarios,
        stats: window,
        slos,
        notices,
        record: cfg.record.as_ref().map(|p| p.display().to_string()),
    })
}

/// Rewrites one line on stderr (a terminal) once a second until `done`.
async fn live_progress(
    t0: Instant,
    total: Duration,
    counters: Arc<Counters>,
    stats: Arc<Mutex<Aggregator>>,
    done: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = done.cancelled() => break,
            _ = tick.tick() => {}
        }
        let elapsed = t0.elapsed();
        let started = counters.started.load(Ordering::Relaxed);
        let in_flight = counters.in_flight.load(Ordering::Relaxed);
        let (errors, p99) = match stats.lock() {
            Ok(s) => (s.errors(), s.p99_ms()),
            Err(_) => (0, 0.0),
        };
        let rate = started as f64 / elapsed.min(total).as_secs_f64().max(1e-3);
        eprint!(
            "\r\x1b[2Kload: {:.0}/{:.0} s, {rate:.1}/s, {in_flight} in flight, {errors} errors, p99 {p99:.1} ms",
            elapsed.as_secs_f64(),
            total.as_secs_f64(),
        );
    }
    eprint!("\r\x1b[2K");
}
