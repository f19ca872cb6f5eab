//! `bazaar chaos`: a seeded fault experiment in the spirit of Jepsen.
//!
//! Starts its own shop (`bazaar up` with replicas, in a data directory of its own, on ports of
//! its own), puts the open-model load of `bazaar load` on it through a fault proxy, and runs
//! the seeded fault schedule of [`schedule`]: SIGKILL of any instance (the registry, the
//! gateway, an order instance with sagas in flight…), SIGSTOP/SIGCONT pauses, a slow, failing
//! or absent payment provider, a delaying, black-holing or resetting network in front of the
//! gateway, and (with `--bus nats`) restarts of a NATS server it started itself. Then it heals
//! everything, waits for quiescence, runs `bazaar check` and writes a report: the fault
//! timeline, the load before / during / after the faults, recovery times, and the check table.

pub mod proxy;
pub mod schedule;

use std::{
    collections::BTreeMap,
    io::{BufRead as _, BufReader, Write as _},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use clap::Args;
use nix::{sys::signal::Signal, unistd::Pid};
use serde::Serialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::{
    bench::process::free_ports,
    check::{
        self,
        state::{ChaosNotes, Kill, Source},
    },
    cli::{parse_duration, parse_replicas, Replicas, UsageError},
    load,
    run_file::RunFile,
};
use proxy::{Fault, FaultHandle, FaultProxy};
use schedule::{Kind, NetFault, Planned, PspFault};

/// The load of a chaos run: `bazaar load`'s default mix, with restocks (25 units each) at 8 %
/// of arrivals instead of 2 %, about what the orders take.
const CHAOS_MIX: &str = "browse=35,order_visa=30,order_declined=5,order_timeout=3,order_ship_fail=3,cancel=7,orders=8,overview=5,register=2,restock=8";

/// `bazaar chaos`.
#[derive(Debug, Clone, Args)]
pub struct ChaosArgs {
    /// How long the load runs (faults in its middle 60 %).
    #[arg(long, default_value = "180s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Seeds the fault schedule and the load: the same seed, the same experiment.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Scenario starts per second.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,

    /// Fault kinds: kill, pause, psp, net, bus (bus only with `--bus nats`). Default: all
    /// that apply.
    #[arg(long, value_parser = schedule::parse_kind_list)]
    pub faults: Option<schedule::Kinds>,

    /// Where the report goes (default: `<data-dir>/report.md`, and printed).
    #[arg(long)]
    pub report: Option<PathBuf>,

    /// The run's data directory (must not exist yet). Default: a new directory under the
    /// system's temp directory, removed after a run with no violation.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,

    /// Keep the data directory even when every invariant holds.
    #[arg(long)]
    pub keep: bool,

    /// `feeds` (embedded) or `nats`: a private `nats-server` on its own port and directory,
    /// which the `bus` fault restarts.
    #[arg(long, default_value = "feeds")]
    pub bus: String,

    /// A PostgreSQL server (e.g. `postgres://postgres@127.0.0.1:5432`): the run's databases
    /// are created there (`bazaar_test_chaos_<run>_<service>`) instead of SQLite files.
    #[arg(long)]
    pub postgres: Option<String>,

    /// Instances per service.
    #[arg(long, default_value = "order=2,inventory=2,payment=2,gateway=2", value_parser = parse_replicas)]
    pub replicas: Replicas,

    /// Failpoints for the services' first runs (`BAZAAR_FAILPOINTS`), e.g. a deliberate bug
    /// to see `check` catch it.
    #[arg(long)]
    pub failpoints: Option<String>,

    /// Succeed only if exactly this invariant is violated (and no other): proves the checker
    /// can fail, e.g. `--failpoints payment.charge.double=error --expect-violation 'no double charge'`.
    #[arg(long)]
    pub expect_violation: Option<String>,

    /// How long to wait for quiescence after the load.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub settle: Duration,
}

/// One applied fault, for the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub at_s: f64,
    pub kind: Kind,
    pub target: String,
    pub detail: String,
    pub lasted_s: f64,
    /// Until the affected part answered again after the fault ended (or the kill).
    pub recovered_after_s: Option<f64>,
    /// Kills: sagas running in the order service at that moment (any instance).
    pub sagas_running: Option<u64>,
    /// Kills of order instances: sagas whose step the killed instance itself was running
    /// (it held their lease).
    pub sagas_held: Option<u64>,
}

pub async fn command(args: ChaosArgs) -> anyhow::Result<()> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        return Err(UsageError("--rate must be above 0".into()).into());
    }
    let nats = match args.bus.as_str() {
        "feeds" => false,
        "nats" => true,
        other => {
            return Err(UsageError(format!("--bus must be feeds or nats, not `{other}`")).into())
        }
    };
    let kinds: Vec<Kind> = match &args.faults {
        Some(k) => k.0.clone(),
        None => Kind::ALL
            .into_iter()
            .filter(|k| nats || *k != Kind::Bus)
            .collect(),
    };
    if kinds.contains(&Kind::Bus) && !nats {
        return Err(UsageError("the bus fault needs --bus nats".into()).into());
    }
    let run_id = format!(
        "{}-{}",
        args.seed,
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let (data_dir, temporary) = match &args.data_dir {
        Some(d) => {
            if d.exists() {
                return Err(UsageError(format!("{} already exists", d.display())).into());
            }
            (d.clone(), false)
        }
        None => (
            std::env::temp_dir().join(format!("bazaar-chaos-{run_id}")),
            true,
        ),
    };
    std::fs::create_dir_all(&data_dir)?;
    eprintln!("chaos: run {run_id}, data in {}", data_dir.display());

    let outcome = experiment(&args, &kinds, nats, &run_id, &data_dir).await;
    let (report, violations_ok) = match outcome {
        Ok(x) => x,
        Err(e) => {
            eprintln!(
                "chaos: the experiment failed; its data stays in {}",
                data_dir.display()
            );
            return Err(e);
        }
    };
    let report_path = args
        .report
        .clone()
        .unwrap_or_else(|| data_dir.join("report.md"));
    std::fs::write(&report_path, &report)
        .with_context(|| format!("write {}", report_path.display()))?;
    print!("{report}");
    eprintln!("chaos: report in {}", report_path.display());
    if violations_ok {
        if temporary && !args.keep {
            // Keep the report; the databases and logs of a passing run are not needed.
            prune_except_reports(&data_dir);
        }
        Ok(())
    } else {
        eprintln!("chaos: data kept in {}", data_dir.display());
        std::process::exit(1);
    }
}

/// The whole experiment; returns the report and whether its verdict is a success.
async fn experiment(
    args: &ChaosArgs,
    kinds: &[Kind],
    nats: bool,
    run_id: &str,
    data_dir: &Path,
) -> anyhow::Result<(String, bool)> {
    let password = uuid::Uuid::new_v4().simple().to_string();
    let [gateway_port, registry_port] = free_ports::<2>()?;
    let mut broker = if nats {
        Some(Broker::start(data_dir)?)
    } else {
        None
    };
    let mut env: Vec<(String, String)> = vec![
        ("BAZAAR_DATA_DIR".into(), data_dir.display().to_string()),
        (
            "BAZAAR_GATEWAY_ADDR".into(),
            format!("127.0.0.1:{gateway_port}"),
        ),
        (
            "BAZAAR_REGISTRY_URL".into(),
            format!("http://127.0.0.1:{registry_port}"),
        ),
        ("BAZAAR_ADMIN_PASSWORD".into(), password.clone()),
        (
            "BAZAAR_RATE_LIMIT_USER".into(),
            "100000/s,burst=100000".into(),
        ),
        (
            "BAZAAR_RATE_LIMIT_ANON".into(),
            "100000/s,burst=100000".into(),
        ),
        ("BAZAAR_LEASE_TTL".into(), "3s".into()),
        ("BAZAAR_HANDLING_TIME".into(), "1s".into()),
        // JetStream: a message whose consumer died mid-handling comes back after this
        // (default 30 s, during which its subscription waits, one message in flight at a time).
        ("BAZAAR_BUS_ACK_WAIT".into(), "5s".into()),
        ("BAZAAR_LOG_FORMAT".into(), "json".into()),
        ("BAZAAR_REPLICAS".into(), replicas_arg(&args.replicas)),
    ];
    if let Some(b) = &broker {
        env.push(("BAZAAR_BUS".into(), b.url()));
    }
    if let Some(pg) = &args.postgres {
        let run = run_id.replace('-', "_");
        env.push((
            "BAZAAR_DATABASE_URL".into(),
            format!(
                "{}/bazaar_test_chaos_{run}_{{service}}",
                pg.trim_end_matches('/')
            ),
        ));
        env.push(("BAZAAR_DB_MAX_CONNECTIONS".into(), "4".into()));
    }
    if let Some(fp) = &args.failpoints {
        env.push(("BAZAAR_FAILPOINTS".into(), fp.clone()));
    }
    let mut shop = UpProcess::start(data_dir, &env)?;
    let result = async {
        shop.wait_ready(Duration::from_secs(120)).await?;
        let gateway: SocketAddr = ([127, 0, 0, 1], gateway_port).into();
        let net_proxy = FaultProxy::start(([127, 0, 0, 1], 0).into(), gateway).await?;
        let public = format!("http://{}", net_proxy.local_addr());
        let direct = format!("http://{gateway}");
        let token = check::state::admin_token(&direct, &password).await?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()?;
        let initial = initial_adjustments(&http, data_dir, &token).await?;
        let plan = schedule::plan(args.seed, args.duration, kinds);
        eprintln!(
            "chaos: {} faults planned over {:?} ({} kills); load {}/s through {public}",
            plan.len(),
            args.duration,
            plan.iter().filter(|p| p.kind == Kind::Kill).count(),
            args.rate
        );

        let record = data_dir.join("load.jsonl");
        let mut cfg = load::LoadConfig::new(public.clone());
        cfg.rate = args.rate;
        cfg.duration = args.duration;
        cfg.seed = args.seed;
        // The default mix with restocks that outpace what orders take: a run where nearly
        // every order is rejected for want of stock would prove nothing.
        cfg.mix = load::Mix::parse(CHAOS_MIX).map_err(|e| anyhow::anyhow!(e))?;
        cfg.record = Some(record.clone());
        cfg.admin_password = Some(password.clone());
        cfg.progress = false;
        let stop = CancellationToken::new();
        let load_task = tokio::spawn(load::run(cfg, stop.clone()));
        // The load's t = 0 is after its set-up; the schedule counts from the same moment.
        let t0 = wait_for_record_start(&record).await?;
        let (faults_from, faults_to) = schedule::phases(args.duration);
        let nemesis = Nemesis {
            data_dir: data_dir.to_owned(),
            http: http.clone(),
            token: token.clone(),
            net: net_proxy.handle(),
            public: public.clone(),
            kills: Arc::new(Mutex::new(Vec::new())),
            paused: Arc::new(Mutex::new(Vec::new())),
        };
        let applied = nemesis.run(&plan, t0, broker.as_mut()).await;
        eprintln!("chaos: faults done; proxy {:?}", net_proxy.stats());
        let load_report = load_task.await.context("the load task")??;
        nemesis.heal(broker.as_mut()).await;
        let notes = ChaosNotes {
            faults_from_unix_ms: unix_ms_at(t0) + faults_from.as_millis() as i64,
            faults_to_unix_ms: unix_ms_at(t0) + faults_to.as_millis() as i64,
            kills: nemesis
                .kills
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            initial_adjustments: initial,
        };
        std::fs::write(
            ChaosNotes::path(data_dir),
            serde_json::to_vec_pretty(&notes)?,
        )?;
        eprintln!(
            "chaos: load done; healed; waiting for quiescence (up to {:?})",
            args.settle
        );
        let target = check::Target {
            source: Source::Direct(RunFile::load(data_dir)?),
            gateway: direct.clone(),
            data_dir: Some(data_dir.to_owned()),
            admin_password: password.clone(),
            record: Some(record.clone()),
        };
        let verdict = check::run(&target, args.settle).await?;
        let states = check::state::fetch_all(&target.source, &token).await?;
        let (_, attempts) = load::read_records(&record)?;
        let report = render_report(&ReportInput {
            args,
            kinds,
            run_id,
            plan: &plan,
            applied: &applied,
            load: &load_report,
            attempts: &attempts,
            check: &verdict,
            states: &states,
        });
        let json = json!({
            "run": run_id,
            "seed": args.seed,
            "faults": applied,
            "check": verdict,
            "load": load_report,
            "proxy": net_proxy.stats(),
        });
        std::fs::write(
            data_dir.join("report.json"),
            serde_json::to_vec_pretty(&json)?,
        )?;
        net_proxy.shutdown().await;
        let ok = match &args.expect_violation {
            None => verdict.violations() == 0,
            Some(name) => {
                let violated: Vec<&str> = verdict
                    .invariants
                    .iter()
                    .filter(|i| i.violations > 0)
                    .map(|i| i.name)
                    .collect();
                eprintln!(
                    "chaos: expected exactly `{name}` to be violated; violated: {violated:?}"
                );
                violated == [name.as_str()]
            }
        };
        anyhow::Ok((report, ok))
    }
    .await;
    shop.stop().await;
    if let Some(b) = broker.as_mut() {
        b.stop();
    }
    result
}

fn prune_except_reports(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if name == "report.md" || name == "report.json" {
            continue;
        }
        let path = e.path();
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
}

fn replicas_arg(r: &Replicas) -> String {
    r.0.iter()
        .map(|(s, n)| format!("{s}={n}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn unix_ms_at(t: Instant) -> i64 {
    let now_ms = bazaar_runtime::time::now_micros() / 1000;
    now_ms - i64::try_from(t.elapsed().as_millis()).unwrap_or(0)
}

/// Waits until the load wrote its header (its set-up is done) and returns its t = 0.
async fn wait_for_record_start(record: &Path) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(text) = std::fs::read_to_string(record) {
            if let Some(line) = text.lines().next() {
                if let Ok(v) = serde_json::from_str::<Value>(line) {
                    if let Some(ms) = v["started_unix_ms"].as_i64() {
                        let now_ms = bazaar_runtime::time::now_micros() / 1000;
                        let ago = Duration::from_millis(u64::try_from(now_ms - ms).unwrap_or(0));
                        return Ok(Instant::now().checked_sub(ago).unwrap_or_else(Instant::now));
                    }
                }
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "the load did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Inventory's ledger adjustments per SKU before the load.
async fn initial_adjustments(
    http: &reqwest::Client,
    data_dir: &Path,
    token: &str,
) -> anyhow::Result<std::collections::HashMap<String, i64>> {
    let run = RunFile::load(data_dir)?;
    let addr = run
        .processes
        .iter()
        .find(|p| p.service == "inventory")
        .map(|p| p.addr.clone())
        .context("no inventory in run.json")?;
    let v: Value = http
        .get(format!("http://{addr}/admin/state"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let state: check::state::ServiceState = serde_json::from_value(v)?;
    Ok(state
        .stock
        .into_iter()
        .map(|s| (s.sku, s.adjustments))
        .collect())
}

/// The `bazaar up` under test.
struct UpProcess {
    child: Child,
    ready: std::sync::mpsc::Receiver<()>,
}

impl UpProcess {
    fn start(data_dir: &Path, env: &[(String, String)]) -> anyhow::Result<UpProcess> {
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        cmd.arg("up")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(data_dir.join("up.log"))?));
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.env_remove("BAZAAR_DATABASE_URL");
        for (k, v) in env.iter().filter(|(k, _)| k == "BAZAAR_DATABASE_URL") {
            cmd.env(k, v);
        }
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().context("start bazaar up")?;
        let stdout = child.stdout.take().context("bazaar up's stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        let out_path = data_dir.join("up.out");
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(out_path).ok();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("Bazaar is up in") {
                    let _ = tx.send(());
                }
                if let Some(f) = file.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
            }
        });
        Ok(UpProcess { child, ready: rx })
    }

    async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if self.ready.try_recv().is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("bazaar up exited while starting ({status}); see up.log");
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "bazaar up was not ready in {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM (the supervisor stops its children in order), SIGKILL of the group after 30 s.
    async fn stop(&mut self) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(0));
        let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = nix::sys::signal::killpg(pid, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// A private `nats-server` with JetStream (never the machine's shared one).
struct Broker {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Broker {
    fn start(data_dir: &Path) -> anyhow::Result<Broker> {
        let mut b = Broker {
            child: None,
            port: free_ports::<1>()?[0],
            dir: data_dir.join("nats"),
        };
        b.spawn()?;
        Ok(b)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let exe = ["/usr/sbin/nats-server", "/usr/local/bin/nats-server"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("nats-server");
        let child = Command::new(exe)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("start {exe} (needed by --bus nats)"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "nats-server did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Applies the schedule.
struct Nemesis {
    data_dir: PathBuf,
    http: reqwest::Client,
    token: String,
    net: FaultHandle,
    public: String,
    kills: Arc<Mutex<Vec<Kill>>>,
    paused: Arc<Mutex<Vec<u32>>>,
}

impl Nemesis {
    async fn run(
        &self,
        plan: &[Planned],
        t0: Instant,
        mut broker: Option<&mut Broker>,
    ) -> Vec<Applied> {
        let mut applied = Vec::new();
        let mut pending: Vec<tokio::task::JoinHandle<Applied>> = Vec::new();
        for p in plan {
            let due = t0 + p.at;
            tokio::time::sleep_until(due.into()).await;
            let at_s = t0.elapsed().as_secs_f64();
            match p.kind {
                Kind::Bus => {
                    // Synchronous: one broker, restarted in place.
                    if let Some(b) = broker.as_deref_mut() {
                        b.stop();
                        tokio::time::sleep(p.lasts).await;
                        let healed = Instant::now();
                        let detail = match b.spawn() {
                            Ok(()) => "nats-server killed and restarted".to_owned(),
                            Err(e) => format!("restart failed: {e}"),
                        };
                        applied.push(Applied {
                            at_s,
                            kind: Kind::Bus,
                            target: "nats".into(),
                            detail,
                            lasted_s: p.lasts.as_secs_f64(),
                            recovered_after_s: Some(healed.elapsed().as_secs_f64()),
                            sagas_running: None,
                            sagas_held: None,
                        });
                    }
                }
                _ => {
                    let me = self.clone_parts();
                    let p = p.clone();
                    pending.push(tokio::spawn(async move { me.apply(p, at_s).await }));
                }
            }
        }
        for h in pending {
            if let Ok(a) = h.await {
                applied.push(a);
            }
        }
        applied.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        applied
    }

    fn clone_parts(&self) -> Nemesis {
        Nemesis {
            data_dir: self.data_dir.clone(),
            http: self.http.clone(),
            token: self.token.clone(),
            net: self.net.clone(),
            public: self.public.clone(),
            kills: self.kills.clone(),
            paused: self.paused.clone(),
        }
    }

    async fn apply(&self, p: Planned, at_s: f64) -> Applied {
        let mut a = Applied {
            at_s,
            kind: p.kind,
            target: String::new(),
            detail: String::new(),
            lasted_s: p.lasts.as_secs_f64(),
            recovered_after_s: None,
            sagas_running: None,
            sagas_held: None,
        };
        match p.kind {
            Kind::Kill => self.kill(&p, &mut a).await,
            Kind::Pause => self.pause(&p, &mut a).await,
            Kind::Psp => self.psp(&p, &mut a).await,
            Kind::Net => self.network(&p, &mut a).await,
            Kind::Bus => {}
        }
        a
    }

    fn victim(&self, pick: u64, weighted_order: bool) -> Option<crate::run_file::RunProcess> {
        let run = RunFile::load(&self.data_dir).ok()?;
        let mut pool = Vec::new();
        // Not one that died a moment ago and is still waiting for its restart.
        for p in run
            .processes
            .into_iter()
            .filter(|p| p.pid > 0 && crate::run_file::pid_alive(p.pid))
        {
            let weight = if weighted_order && p.service == "order" {
                3
            } else {
                1
            };
            for _ in 0..weight {
                pool.push(p.clone());
            }
        }
        if pool.is_empty() {
            return None;
        }
        let i = usize::try_from(pick % pool.len() as u64).unwrap_or(0);
        Some(pool.swap_remove(i))
    }

    async fn kill(&self, p: &Planned, a: &mut Applied) {
        let Some(v) = self.victim(p.pick, true) else {
            a.detail = "no running instance".into();
            return;
        };
        a.target = v.instance_id.clone();
        // Sagas running in the order service at the kill: read from the victim when it is
        // an order instance, else from any order instance.
        let order_addr = if v.service == "order" {
            Some(v.addr.clone())
        } else {
            RunFile::load(&self.data_dir).ok().and_then(|run| {
                run.processes
                    .into_iter()
                    .find(|p| p.service == "order" && !p.addr.is_empty())
                    .map(|p| p.addr)
            })
        };
        if let Some(addr) = order_addr {
            if let Some(sagas) = self.running_sagas(&addr).await {
                a.sagas_running = Some(sagas.len() as u64);
                if v.service == "order" {
                    let held = sagas
                        .iter()
                        .filter(|s| s["held_by"].as_str() == Some(v.instance_id.as_str()))
                        .count();
                    a.sagas_held = Some(held as u64);
                }
            }
        }
        let killed_at = Instant::now();
        match nix::sys::signal::kill(Pid::from_raw(v.pid as i32), Signal::SIGKILL) {
            Ok(()) => {
                self.kills
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Kill {
                        at_unix_ms: bazaar_runtime::time::now_micros() / 1000,
                        instance_id: v.instance_id.clone(),
                        pid: v.pid,
                    });
                a.detail = format!("SIGKILL pid {}", v.pid);
                a.recovered_after_s = self
                    .back_again(&v.instance_id, Some(v.pid), killed_at)
                    .await;
            }
            Err(e) => a.detail = format!("SIGKILL pid {} failed: {e}", v.pid),
        }
    }

    /// Sagas running in the order service (read from the instance about to be killed; at
    /// most 100, the largest page).
    async fn running_sagas(&self, addr: &str) -> Option<Vec<Value>> {
        let v: Value = self
            .http
            .get(format!(
                "http://{addr}/admin/sagas?status=running&limit=100"
            ))
            .bearer_auth(&self.token)
            .timeout(Duration::from_millis(500))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        v["items"].as_array().cloned()
    }

    /// Waits until `instance` runs (as a process other than `old_pid`) and is ready; seconds
    /// from `since`.
    async fn back_again(
        &self,
        instance: &str,
        old_pid: Option<u32>,
        since: Instant,
    ) -> Option<f64> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(run) = RunFile::load(&self.data_dir) {
                if let Some(p) = run.processes.iter().find(|p| p.instance_id == instance) {
                    if p.pid > 0 && Some(p.pid) != old_pid && !p.addr.is_empty() {
                        let ready = self
                            .http
                            .get(format!("http://{}/readyz", p.addr))
                            .timeout(Duration::from_millis(500))
                            .send()
                            .await
                            .is_ok_and(|r| r.status().is_success());
                        if ready {
                            return Some(since.elapsed().as_secs_f64());
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    async fn pause(&self, p: &Planned, a: &mut Applied) {
        let Some(v) = self.victim(p.pick, false) else {
            a.detail = "no running instance".into();
            return;
        };
        a.target = v.instance_id.clone();
        let pid = Pid::from_raw(v.pid as i32);
        if nix::sys::signal::kill(pid, Signal::SIGSTOP).is_err() {
            a.detail = format!("SIGSTOP pid {} failed", v.pid);
            return;
        }
        self.paused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(v.pid);
        a.detail = format!("SIGSTOP pid {} for {:.1} s", v.pid, p.lasts.as_secs_f64());
        tokio::time::sleep(p.lasts).await;
        let _ = nix::sys::signal::kill(pid, Signal::SIGCONT);
        self.paused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|x| *x != v.pid);
        let healed = Instant::now();
        a.recovered_after_s = self.back_again(&v.instance_id, None, healed).await;
    }

    async fn psp_behaviour(&self, body: Value) -> Result<(), String> {
        let run = RunFile::load(&self.data_dir).map_err(|e| e.to_string())?;
        let addrs: Vec<String> = run
            .processes
            .iter()
            .filter(|p| p.service == "psp" && !p.addr.is_empty())
            .map(|p| p.addr.clone())
            .collect();
        for addr in &addrs {
            let res = self
                .http
                .put(format!("http://{addr}/admin/behaviour"))
                .bearer_auth(&self.token)
                .json(&body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !res.status().is_success() {
                return Err(format!("the provider answered {}", res.status()));
            }
        }
        Ok(())
    }

    async fn psp(&self, p: &Planned, a: &mut Applied) {
        a.target = "psp".into();
        let (body, what) = match p.psp {
            Some(PspFault::Slow { latency_ms }) => (
                json!({"latency_ms": latency_ms}),
                format!("slow ({latency_ms} ms)"),
            ),
            Some(PspFault::Errors { error_rate }) => (
                json!({"error_rate": error_rate}),
                format!("failing {:.0}% of calls", error_rate * 100.0),
            ),
            _ => (json!({"down": true}), "down".to_owned()),
        };
        a.detail = match self.psp_behaviour(body).await {
            Ok(()) => what,
            Err(e) => format!("{what}: not applied ({e})"),
        };
        tokio::time::sleep(p.lasts).await;
        let _ = self.heal_psp().await;
        let healed = Instant::now();
        // Recovered once every payment instance's breakers are closed again.
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.breakers_closed().await {
                a.recovered_after_s = Some(healed.elapsed().as_secs_f64());
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn heal_psp(&self) -> Result<(), String> {
        self.psp_behaviour(json!({"latency_ms": 0, "error_rate": 0.0, "down": false}))
            .await
    }

    async fn breakers_closed(&self) -> bool {
        let Ok(run) = RunFile::load(&self.data_dir) else {
            return false;
        };
        for p in run
            .processes
            .iter()
            .filter(|p| p.service == "payment" && !p.addr.is_empty())
        {
            let Ok(res) = self
                .http
                .get(format!("http://{}/admin/breakers", p.addr))
                .bearer_auth(&self.token)
                .timeout(Duration::from_millis(500))
                .send()
                .await
            else {
                return false;
            };
            let Ok(v) = res.json::<Value>().await else {
                return false;
            };
            let open = v["items"]
                .as_array()
                .is_some_and(|items| items.iter().any(|b| b["state"] != "closed"));
            if open {
                return false;
            }
        }
        true
    }

    async fn network(&self, p: &Planned, a: &mut Applied) {
        a.target = "gateway (fault proxy)".into();
        let (fault, what) = match p.net {
            Some(NetFault::Delay { ms }) => (Fault::Delay { ms }, format!("+{ms} ms per chunk")),
            Some(NetFault::Drop) => (Fault::Drop, "black hole".to_owned()),
            _ => (Fault::Reset, "connections reset".to_owned()),
        };
        a.detail = what;
        self.net.set(fault);
        tokio::time::sleep(p.lasts).await;
        self.net.set(Fault::None);
        let healed = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let ok = self
                .http
                .get(format!("{}/api/v1/products?limit=1", self.public))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                a.recovered_after_s = Some(healed.elapsed().as_secs_f64());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends every fault still active.
    async fn heal(&self, broker: Option<&mut Broker>) {
        for pid in self
            .paused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGCONT);
        }
        self.net.set(Fault::None);
        let _ = self.heal_psp().await;
        if let Some(b) = broker {
            if b.child.is_none() {
                let _ = b.spawn();
            }
        }
    }
}

struct ReportInput<'a> {
    args: &'a ChaosArgs,
    kinds: &'a [Kind],
    run_id: &'a str,
    plan: &'a [Planned],
    applied: &'a [Applied],
    load: &'a load::LoadReport,
    attempts: &'a [load::Attempt],
    check: &'a check::CheckReport,
    states: &'a std::collections::HashMap<&'static str, check::state::ServiceState>,
}

/// Whether a planned fault acted (a victim that died a moment before cannot be killed again).
fn took_effect(a: &Applied) -> bool {
    !(a.detail.contains("failed")
        || a.detail.contains("not applied")
        || a.detail.starts_with("no running"))
}

fn render_report(r: &ReportInput<'_>) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let verdict = if r.check.violations() == 0 {
        "EVERY INVARIANT HOLDS".to_owned()
    } else {
        format!("{} VIOLATION(S)", r.check.violations())
    };
    let _ = writeln!(s, "# bazaar chaos — {verdict}\n");
    let _ = writeln!(
        s,
        "run {} · seed {} · {:?} at {}/s · bus {} · {} · replicas {} · faults {}",
        r.run_id,
        r.args.seed,
        r.args.duration,
        r.args.rate,
        r.args.bus,
        if r.args.postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        replicas_arg(&r.args.replicas),
        r.kinds
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(",")
    );
    if let Some(fp) = &r.args.failpoints {
        let _ = writeln!(s, "failpoints: {fp}");
    }

    let _ = writeln!(s, "\n## Faults\n");
    let mut by_kind: BTreeMap<Kind, (usize, Vec<f64>)> = BTreeMap::new();
    for a in r.applied.iter().filter(|a| took_effect(a)) {
        let e = by_kind.entry(a.kind).or_default();
        e.0 += 1;
        if let Some(t) = a.recovered_after_s {
            e.1.push(t);
        }
    }
    let _ = writeln!(
        s,
        "| kind | injected | recovered | median recovery | longest recovery |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|");
    for (kind, (n, mut times)) in by_kind {
        times.sort_by(f64::total_cmp);
        let median = times.get(times.len() / 2).copied();
        let max = times.last().copied();
        let _ = writeln!(
            s,
            "| {} | {n} | {} | {} | {} |",
            kind.as_str(),
            times.len(),
            median.map_or("–".into(), |t| format!("{t:.2} s")),
            max.map_or("–".into(), |t| format!("{t:.2} s"))
        );
    }
    let kills: Vec<&Applied> = r
        .applied
        .iter()
        .filter(|a| a.kind == Kind::Kill && took_effect(a))
        .collect();
    let skipped = r.applied.iter().filter(|a| !took_effect(a)).count();
    if skipped > 0 {
        let _ = writeln!(
            s,
            "\n{skipped} planned fault(s) found nothing to act on (the victim had just died and was not back yet); listed in the timeline, not counted."
        );
    }
    let order_kills: Vec<&&Applied> = kills
        .iter()
        .filter(|a| a.target.starts_with("order-"))
        .collect();
    let _ = writeln!(
        s,
        "\n{} kills, {} of them while sagas were in flight ({} sagas running in the order service at those kills); {} of order instances, {} of them while that instance was running saga steps ({} steps cut off). Planned faults: {}.",
        kills.len(),
        kills.iter().filter(|a| a.sagas_running > Some(0)).count(),
        kills.iter().filter_map(|a| a.sagas_running).sum::<u64>(),
        order_kills.len(),
        order_kills.iter().filter(|a| a.sagas_held > Some(0)).count(),
        order_kills.iter().filter_map(|a| a.sagas_held).sum::<u64>(),
        r.plan.len()
    );
    let longest = r
        .applied
        .iter()
        .filter_map(|a| a.recovered_after_s.map(|t| (t, a)))
        .max_by(|x, y| x.0.total_cmp(&y.0));
    if let Some((t, a)) = longest {
        let _ = writeln!(
            s,
            "Longest recovery: {t:.2} s ({} of {} at {:.1} s).",
            a.kind.as_str(),
            a.target,
            a.at_s
        );
    }
    let unrecovered = r
        .applied
        .iter()
        .filter(|a| a.recovered_after_s.is_none() && a.kind != Kind::Bus && took_effect(a))
        .count();
    if unrecovered > 0 {
        let _ = writeln!(
            s,
            "{unrecovered} fault(s) without a measured recovery within 60 s."
        );
    }

    let _ = writeln!(
        s,
        "\n## Load (open model, latency from the intended start)\n"
    );
    let (from, to) = schedule::phases(r.args.duration);
    let total_ms = r.args.duration.as_secs_f64() * 1000.0;
    let phases = [
        ("before faults", 0.0, from.as_secs_f64() * 1000.0),
        (
            "during faults",
            from.as_secs_f64() * 1000.0,
            to.as_secs_f64() * 1000.0,
        ),
        (
            "after faults",
            to.as_secs_f64() * 1000.0,
            total_ms + 60_000.0,
        ),
    ];
    let _ = writeln!(
        s,
        "| phase | requests | 2xx | 4xx | 5xx | no answer | errors | p50 | p99 | max |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, a, b) in phases {
        let w = load::summarize(r.attempts, a, b);
        let t = &w.total;
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {} | {} | {:.2}% | {:.0} ms | {:.0} ms | {:.0} ms |",
            t.count,
            t.s2xx,
            t.s4xx,
            t.s5xx,
            t.transport_errors,
            w.errors_pct,
            t.p50_ms,
            t.p99_ms,
            t.max_ms
        );
    }
    let placements: Vec<&load::Attempt> = r
        .attempts
        .iter()
        .filter(|a| a.op == load::Op::PlaceOrder && a.is_final)
        .collect();
    let _ = writeln!(
        s,
        "\nScenarios started: {} of {} scheduled ({} dropped).",
        r.load.started, r.load.scheduled, r.load.dropped
    );
    if let Some(share) = r.check.fault_phase_2xx {
        let _ = writeln!(
            s,
            "Order placements answered 2xx during faults: {:.1}% (goal ≥ 90%).",
            share * 100.0
        );
    }

    let _ = writeln!(s, "\n## Orders\n");
    let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
    if let Some(o) = r.states.get("order") {
        for x in &o.orders {
            *by_status.entry(x.status.as_str()).or_default() += 1;
        }
    }
    let _ = writeln!(
        s,
        "attempted {} · in the order service {} ({})",
        placements.len(),
        by_status.values().sum::<u64>(),
        by_status
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(share) = check::invariants_visa_share(r.states, r.attempts) {
        let _ = writeln!(s, "tok_visa orders that shipped: {:.1}%", share * 100.0);
    }

    let _ = writeln!(s, "\n## Check\n\n```");
    s.push_str(&r.check.render());
    let _ = writeln!(s, "```");
    let _ = writeln!(s, "\n## Timeline\n");
    for a in r.applied {
        let _ = writeln!(
            s,
            "- {:>7.1} s {:<5} {:<22} {}{}{}",
            a.at_s,
            a.kind.as_str(),
            a.target,
            a.detail,
            match (a.sagas_running, a.sagas_held) {
                (Some(n), Some(h)) => format!(", {n} sagas running ({h} in this instance)"),
                (Some(n), None) => format!(", {n} sagas running"),
                _ => String::new(),
            },
            a.recovered_after_s
                .map_or(String::new(), |t| format!(", back after {t:.2} s"))
        );
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_chaos_mix_parses_and_restocks_more_than_the_default() {
        let chaos = load::Mix::parse(CHAOS_MIX).unwrap();
        let default = load::Mix::parse(load::DEFAULT_MIX).unwrap();
        assert_ne!(format!("{chaos:?}"), format!("{default:?}"));
        assert!(CHAOS_MIX.contains("restock=8"));
    }

    #[test]
    fn only_the_reports_survive_pruning() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["report.md", "report.json", "load.jsonl", "order.db"] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        std::fs::create_dir(dir.path().join("panics")).unwrap();
        prune_except_reports(dir.path());
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["report.json", "report.md"]);
    }
}
