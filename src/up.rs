//! `bazaar up`: the supervisor.
//!
//! Starts the registry, then every service, then the gateway, each as a child process
//! (`bazaar serve <service>`, this same binary) on a free port with its own database. Child
//! output is prefixed with the service name. A child that dies unexpectedly is deregistered
//! and restarted with exponential backoff (reset after a minute of good health). Ctrl-C or
//! SIGTERM stops the gateway first, then the services, then the registry: each gets SIGTERM
//! (deregister, drain) and SIGKILL after a deadline. `run.json` in the data directory records
//! pids and addresses for `bazaar status`.

use std::os::unix::process::ExitStatusExt as _;
use std::{
    collections::HashMap,
    io::IsTerminal,
    path::Path,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use bazaar_discovery::RegistryClient;
use nix::{sys::signal::Signal, unistd::Pid};
use rand::{distributions::Alphanumeric, Rng};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::{oneshot, watch},
};

use crate::{
    cli::{Replicas, ServeArgs, ServiceName, UpArgs, UsageError},
    run_file::{pid_alive, RunFile, RunProcess},
    serve,
};

/// How long a stopping child may drain before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// How long start-up may take before `up` gives up.
const READY_DEADLINE: Duration = Duration::from_secs(60);

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    bazaar_runtime::telemetry::init(bazaar_runtime::telemetry::LogFormat::Text);
    let data_dir = args.common.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("create data directory {}", data_dir.display()))?;
    if let Ok(previous) = RunFile::load(&data_dir) {
        if previous.supervisor_pid != std::process::id() && pid_alive(previous.supervisor_pid) {
            return Err(UsageError(format!(
                "a `bazaar up` (pid {}) is already running with data directory {}",
                previous.supervisor_pid,
                data_dir.display()
            ))
            .into());
        }
    }
    serve::registry_addr(&args.common.registry_url)?;
    let started = Instant::now();
    let admin_password = std::env::var("BAZAAR_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    if args.in_process {
        if args.replicas != Replicas::default() {
            return Err(UsageError(
                "--replicas needs one process per instance; it cannot be used with --in-process"
                    .into(),
            )
            .into());
        }
        run_in_process(args, admin_password, started).await
    } else {
        run_processes(args, admin_password, started).await
    }
}

/// What the supervisor knows about one child.
struct ChildSpec {
    service: ServiceName,
    instance_id: String,
    extra_args: Vec<String>,
    extra_env: Vec<(&'static str, &'static str)>,
}

impl ChildSpec {
    /// Instance `n` (from 1) of the same service.
    fn replica(&self, n: u32) -> ChildSpec {
        ChildSpec {
            service: self.service,
            instance_id: format!("{}-{n}", self.service.as_str()),
            extra_args: self.extra_args.clone(),
            extra_env: self.extra_env.clone(),
        }
    }
}

struct Shared {
    run: Mutex<RunFile>,
    data_dir: std::path::PathBuf,
    colour: bool,
    generated_password: Option<String>,
    /// Given to identity only: no other process needs it in its environment.
    admin_password: String,
}

impl Shared {
    fn update(&self, instance_id: &str, f: impl FnOnce(&mut RunProcess)) {
        let mut run = self.run.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = run
            .processes
            .iter_mut()
            .find(|p| p.instance_id == instance_id)
        {
            f(p);
        }
        if let Err(e) = run.save(&self.data_dir) {
            tracing::warn!(error = %e, "Cannot write run.json.");
        }
    }
}

async fn run_processes(
    args: UpArgs,
    admin_password: Option<String>,
    started: Instant,
) -> anyhow::Result<()> {
    let data_dir = args.common.data_dir.clone();
    let (password, generated) = match admin_password {
        Some(p) => (p, None),
        None => {
            let p: String = rand::thread_rng()
                .sample_iter(&Alphanumeric)
                .take(20)
                .map(char::from)
                .collect();
            (p.clone(), Some(p))
        }
    };
    let shared = Arc::new(Shared {
        run: Mutex::new(RunFile {
            supervisor_pid: std::process::id(),
            mode: "processes".to_owned(),
            gateway_url: format!("http://{}", args.common.gateway_addr),
            registry_url: args.common.registry_url.clone(),
            started_at: bazaar_runtime::time::now_unix(),
            processes: Vec::new(),
        }),
        data_dir: data_dir.clone(),
        colour: std::io::stdout().is_terminal(),
        generated_password: generated,
        admin_password: password,
    });
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert(
        "BAZAAR_SUPERVISOR_PID".into(),
        std::process::id().to_string(),
    );
    env.insert("BAZAAR_DATA_DIR".into(), data_dir.display().to_string());
    env.insert(
        "BAZAAR_REGISTRY_URL".into(),
        args.common.registry_url.clone(),
    );
    env.insert(
        "BAZAAR_GATEWAY_ADDR".into(),
        args.common.gateway_addr.to_string(),
    );
    env.insert(
        "BAZAAR_LEASE_TTL".into(),
        format!("{}ms", args.common.lease_ttl.as_millis()),
    );
    env.insert(
        "BAZAAR_RATE_LIMIT_USER".into(),
        args.common.rate_limit_user.clone(),
    );
    env.insert(
        "BAZAAR_RATE_LIMIT_ANON".into(),
        args.common.rate_limit_anon.clone(),
    );
    if let Some(url) = &args.common.database_url {
        env.insert("BAZAAR_DATABASE_URL".into(), url.clone());
    }
    if let Some(routes) = &args.common.gateway_routes {
        env.insert("BAZAAR_GATEWAY_ROUTES".into(), routes.display().to_string());
    }
    // glibc's dynamic mmap threshold keeps freed large blocks (identity's 19 MiB argon2
    // working memory per hash) cached in one arena per thread: idle identity grew to ~500 MB.
    // A fixed threshold returns them to the OS at once; two arenas bound the rest. Measured by
    // `bazaar bench startup` (docs/benchmarks.md). A caller's own values win.
    for (k, v) in [
        ("MALLOC_ARENA_MAX", "2"),
        ("MALLOC_MMAP_THRESHOLD_", "1048576"),
    ] {
        if std::env::var_os(k).is_none() {
            env.insert(k.into(), v.into());
        }
    }
    if std::env::var_os("BAZAAR_LOG_FORMAT").is_none() {
        let format = if std::io::stderr().is_terminal() {
            "text"
        } else {
            "json"
        };
        env.insert("BAZAAR_LOG_FORMAT".into(), format.into());
    }
    let env = Arc::new(env);

    let demo = |service| {
        spec(
            service,
            if args.no_demo {
                vec![]
            } else {
                vec!["--seed-demo".into()]
            },
        )
    };
    // Each tier starts once the one before it is ready: services find their dependencies
    // through the registry, and every service can start without the others (consumers retry
    // their producers), so the tiers only make start-up quieter.
    let tiers: Vec<Vec<ChildSpec>> = vec![
        vec![spec(ServiceName::Registry, vec![])],
        vec![
            spec(ServiceName::Identity, vec![]),
            demo(ServiceName::Catalog),
            demo(ServiceName::Inventory),
            spec(ServiceName::Psp, vec![]),
        ],
        vec![
            spec(ServiceName::Payment, vec![]),
            spec(ServiceName::Order, vec![]),
            spec(ServiceName::Shipping, vec![]),
            spec(ServiceName::Notification, vec![]),
        ],
        vec![spec(ServiceName::Gateway, vec![])],
    ];
    let tiers = with_replicas(tiers, &args.replicas);

    let mut stop_txs: Vec<Vec<watch::Sender<bool>>> = Vec::new();
    let mut handles: Vec<Vec<tokio::task::JoinHandle<()>>> = Vec::new();
    let mut failed_start: Option<anyhow::Error> = None;
    let mut rows = Vec::new();
    for tier in tiers {
        let mut tier_stops = Vec::new();
        let mut tier_ready = Vec::new();
        let mut tier_handles = Vec::new();
        for child in tier {
            let (stop_tx, stop_rx) = watch::channel(false);
            let (ready_tx, ready_rx) = oneshot::channel();
            {
                let mut run = shared.run.lock().unwrap_or_else(|e| e.into_inner());
                run.processes.push(RunProcess {
                    service: child.service.as_str().to_owned(),
                    instance_id: child.instance_id.clone(),
                    pid: 0,
                    addr: String::new(),
                    started_at: 0,
                    restarts: 0,
                });
            }
            let name = child.service;
            tier_handles.push(tokio::spawn(supervise(
                child,
                env.clone(),
                shared.clone(),
                stop_rx,
                ready_tx,
            )));
            tier_stops.push(stop_tx);
            tier_ready.push((name, ready_rx));
        }
        stop_txs.push(tier_stops);
        handles.push(tier_handles);
        for (name, ready) in tier_ready {
            match tokio::time::timeout(READY_DEADLINE, ready).await {
                Ok(Ok(Ok(row))) => rows.push(row),
                Ok(Ok(Err(e))) => failed_start = Some(e),
                Ok(Err(_)) => {
                    failed_start = Some(anyhow::anyhow!(
                        "{} stopped before it was ready",
                        name.as_str()
                    ))
                }
                Err(_) => {
                    failed_start = Some(anyhow::anyhow!(
                        "{} was not ready within {READY_DEADLINE:?}",
                        name.as_str()
                    ))
                }
            }
        }
        if failed_start.is_some() {
            break;
        }
    }

    if failed_start.is_none() {
        print_ready_table(
            &rows,
            &args,
            started.elapsed(),
            shared.generated_password.is_some(),
        );
        tokio::select! {
            () = bazaar_runtime::shutdown::signal() => {}
            () = all_done(&mut handles) => {}
        }
        eprintln!("bazaar: shutting down (gateway, then services, then registry)…");
    }

    // Stop in reverse order of start, each tier gone before the next is told: the gateway
    // finishes its in-flight requests while the services behind it still answer.
    for (tier, tier_handles) in stop_txs.into_iter().zip(handles).rev() {
        for tx in &tier {
            let _ = tx.send(true);
        }
        for h in tier_handles {
            let _ = h.await;
        }
    }
    let _ = std::fs::remove_file(RunFile::path(&data_dir));
    match failed_start {
        Some(e) => Err(e),
        None => {
            eprintln!("bazaar: stopped.");
            Ok(())
        }
    }
}

async fn all_done(handles: &mut [Vec<tokio::task::JoinHandle<()>>]) {
    for h in handles.iter_mut().flatten() {
        let _ = h.await;
    }
}

fn spec(service: ServiceName, extra_args: Vec<String>) -> ChildSpec {
    ChildSpec {
        service,
        instance_id: format!("{}-1", service.as_str()),
        extra_args,
        extra_env: Vec::new(),
    }
}

/// Adds each service's replicas (instances 2…n) as a tier of their own right after the tier
/// of its first instance: the first one has migrated the database by the time they start.
fn with_replicas(tiers: Vec<Vec<ChildSpec>>, replicas: &Replicas) -> Vec<Vec<ChildSpec>> {
    let mut out = Vec::new();
    for mut tier in tiers {
        for child in &mut tier {
            if child.service == ServiceName::Gateway && replicas.of(ServiceName::Gateway) > 1 {
                child.extra_env.push(("BAZAAR_REUSE_PORT", "1"));
            }
        }
        let more: Vec<ChildSpec> = tier
            .iter()
            .flat_map(|c| (2..=replicas.of(c.service)).map(|n| c.replica(n)))
            .collect();
        out.push(tier);
        if !more.is_empty() {
            out.push(more);
        }
    }
    out
}

/// One row of the ready table.
struct ReadyRow {
    service: &'static str,
    pid: u32,
    addr: String,
}

/// Runs one child for the life of the supervisor: start, watch, restart, stop.
async fn supervise(
    spec: ChildSpec,
    env: Arc<HashMap<String, String>>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    ready: oneshot::Sender<anyhow::Result<ReadyRow>>,
) {
    let name = spec.service.as_str();
    let mut ready = Some(ready);
    let mut restarts = 0_u32;
    let mut backoff = Duration::from_millis(100);
    let registry_url = env.get("BAZAAR_REGISTRY_URL").cloned().unwrap_or_default();
    loop {
        let spawned = spawn_child(&spec, &env, &shared, restarts == 0);
        let (mut child, mut addr_rx, tail) = match spawned {
            Ok(x) => x,
            Err(e) => {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(Err(e));
                }
                return;
            }
        };
        let pid = child.id().unwrap_or(0);
        let began = Instant::now();
        let mut restart_now = false;
        // Wait for the address line or an early exit.
        let addr = tokio::select! {
            a = addr_rx.recv() => a,
            status = child.wait() => {
                record_exit(&shared, &spec, pid, &status, "starting");
                let msg = format!("{name} exited during start-up ({}): {}", status.as_ref().map(|s| s.to_string()).unwrap_or_default(), last_lines(&tail));
                // An exit code is the service refusing to start (a bad setting, an unreachable
                // database): give up. A death by signal (a crash, a failpoint) is restarted
                // like a crash after start-up, a few times at most.
                let crashed = status.as_ref().is_ok_and(|s| s.signal().is_some());
                if !(crashed && restarts < MAX_START_CRASHES) {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(Err(anyhow::anyhow!(msg)));
                        return;
                    }
                }
                tracing::warn!(service = name, "{msg}");
                None
            }
            _ = stop.changed() => { terminate(&mut child, name).await; return; }
        };
        if let Some(addr) = addr.clone() {
            shared.update(&spec.instance_id, |p| {
                p.pid = pid;
                p.addr = addr.clone();
                p.started_at = bazaar_runtime::time::now_unix();
                p.restarts = restarts;
            });
            if let Some(tx) = ready.take() {
                let became_ready = tokio::select! {
                    r = wait_ready(&addr) => Ok(r),
                    status = child.wait() => Err(status),
                };
                match became_ready {
                    Ok(Ok(())) => {
                        let _ = tx.send(Ok(ReadyRow {
                            service: name,
                            pid,
                            addr: addr.clone(),
                        }));
                    }
                    Ok(Err(e)) => {
                        let _ = tx.send(Err(e.context(format!("{name} did not become ready"))));
                        terminate(&mut child, name).await;
                        return;
                    }
                    Err(status) => {
                        record_exit(&shared, &spec, pid, &status, "starting");
                        let crashed = status.as_ref().is_ok_and(|s| s.signal().is_some());
                        let msg = format!(
                            "{name} exited before it was ready ({}): {}",
                            status.as_ref().map(|s| s.to_string()).unwrap_or_default(),
                            last_lines(&tail)
                        );
                        if !(crashed && restarts < MAX_START_CRASHES) {
                            let _ = tx.send(Err(anyhow::anyhow!(msg)));
                            return;
                        }
                        tracing::warn!(service = name, "{msg}");
                        ready = Some(tx);
                        restart_now = true;
                    }
                }
            }
            // Wait for exit or stop (unless it already died while starting).
            if !restart_now {
                tokio::select! {
                    status = child.wait() => {
                        if *stop.borrow() {
                            return;
                        }
                        record_exit(&shared, &spec, pid, &status, "running");
                        let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                        tracing::warn!(service = name, pid, %status, "Process exited unexpectedly; restarting.");
                    }
                    _ = stop.changed() => { terminate(&mut child, name).await; return; }
                }
            }
        }
        // The dead instance must not receive traffic while it restarts.
        if spec.service != ServiceName::Registry {
            let client = RegistryClient::new(&registry_url);
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                client.deregister(name, &spec.instance_id),
            )
            .await;
        }
        restarts += 1;
        if began.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_millis(100);
        }
        tracing::info!(
            service = name,
            restarts,
            delay_ms = backoff.as_millis() as u64,
            "Restarting."
        );
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One line of `exits.jsonl` in the data directory: a child that ended without being told to.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ExitRecord {
    pub at_unix_ms: i64,
    pub service: String,
    pub instance_id: String,
    pub pid: u32,
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// The signal, when one ended it (9 for SIGKILL).
    pub signal: Option<i32>,
    /// `starting` or `running`.
    pub phase: String,
}

/// The file of [`ExitRecord`]s.
pub fn exits_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("exits.jsonl")
}

/// Appends an [`ExitRecord`] for every exit the supervisor did not cause, so a crash cannot go
/// unnoticed behind a quick restart (`bazaar check` reads them).
fn record_exit(
    shared: &Shared,
    spec: &ChildSpec,
    pid: u32,
    status: &std::io::Result<std::process::ExitStatus>,
    phase: &str,
) {
    use std::io::Write as _;
    let record = ExitRecord {
        at_unix_ms: bazaar_runtime::time::now_micros() / 1000,
        service: spec.service.as_str().to_owned(),
        instance_id: spec.instance_id.clone(),
        pid,
        code: status.as_ref().ok().and_then(|s| s.code()),
        signal: status.as_ref().ok().and_then(|s| s.signal()),
        phase: phase.to_owned(),
    };
    let written = serde_json::to_string(&record)
        .map_err(std::io::Error::other)
        .and_then(|line| {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(exits_path(&shared.data_dir))?;
            writeln!(f, "{line}")
        });
    if let Err(e) = written {
        tracing::warn!(error = %e, "Cannot record an exit in exits.jsonl.");
    }
}

/// How many times a service that crashes (dies by a signal) while starting is restarted
/// before `bazaar up` gives up on it.
const MAX_START_CRASHES: u32 = 5;

type Tail = Arc<Mutex<std::collections::VecDeque<String>>>;

fn spawn_child(
    spec: &ChildSpec,
    env: &HashMap<String, String>,
    shared: &Arc<Shared>,
    first_start: bool,
) -> anyhow::Result<(Child, tokio::sync::mpsc::Receiver<String>, Tail)> {
    let exe = std::env::current_exe().context("find the bazaar executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg("serve")
        .arg(spec.service.as_str())
        .args(&spec.extra_args);
    cmd.envs(env.iter());
    cmd.envs(spec.extra_env.iter().copied());
    cmd.env("BAZAAR_INSTANCE_ID", &spec.instance_id);
    if spec.service == ServiceName::Identity {
        cmd.env("BAZAAR_ADMIN_PASSWORD", &shared.admin_password);
    } else {
        cmd.env_remove("BAZAAR_ADMIN_PASSWORD");
    }
    if !first_start {
        // Failpoints are for a service's first run: one that aborted at a failpoint must come
        // back without it, or it would crash in a loop.
        cmd.env_remove("BAZAAR_FAILPOINTS");
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.kill_on_drop(true);
    // Own process group: a terminal's Ctrl-C (SIGINT to the foreground group) reaches only the
    // supervisor, which then stops children in order instead of racing them into restarts.
    cmd.process_group(0);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("start {}", spec.service.as_str()))?;
    let (addr_tx, addr_rx) = tokio::sync::mpsc::channel(1);
    let tail: Tail = Arc::new(Mutex::new(std::collections::VecDeque::new()));
    let prefix = prefix_for(spec.service, shared.colour);
    if let Some(out) = child.stdout.take() {
        let prefix = prefix.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut lines = LossyLines::new(out);
            while let Some(line) = lines.next().await {
                if let Some(rest) = line.strip_prefix("bazaar-serve: ") {
                    if let Some((_, addr)) = rest.split_once(" listening on ") {
                        let _ = addr_tx.send(addr.trim().to_owned()).await;
                    }
                    continue;
                }
                if line.starts_with("bazaar-identity: created admin account") {
                    announce_admin(shared.generated_password.as_deref(), &shared.data_dir);
                    continue;
                }
                println!("{prefix}{line}");
            }
        });
    }
    if let Some(err) = child.stderr.take() {
        let tail = tail.clone();
        tokio::spawn(async move {
            let mut lines = LossyLines::new(err);
            while let Some(line) = lines.next().await {
                {
                    let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                    if t.len() == 5 {
                        t.pop_front();
                    }
                    t.push_back(line.clone());
                }
                eprintln!("{prefix}{line}");
            }
        });
    }
    Ok((child, addr_rx, tail))
}

fn last_lines(tail: &Tail) -> String {
    let t = tail.lock().unwrap_or_else(|e| e.into_inner());
    t.iter().cloned().collect::<Vec<_>>().join(" / ")
}

/// Reads lines, replacing invalid UTF-8 instead of stopping: a child whose pipe is no longer
/// drained would block on its next write.
struct LossyLines<R> {
    reader: BufReader<R>,
    buf: Vec<u8>,
}

impl<R: tokio::io::AsyncRead + Unpin> LossyLines<R> {
    fn new(r: R) -> Self {
        Self {
            reader: BufReader::new(r),
            buf: Vec::new(),
        }
    }

    async fn next(&mut self) -> Option<String> {
        self.buf.clear();
        match self.reader.read_until(b'\n', &mut self.buf).await {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                let line = String::from_utf8_lossy(&self.buf);
                Some(line.trim_end_matches(['\n', '\r']).to_owned())
            }
        }
    }
}

/// Shows a generated admin password once, on a terminal only; otherwise (systemd, a pipe, a
/// file) it would end up in logs, so it goes to a file only the owner can read.
fn announce_admin(generated: Option<&str>, data_dir: &Path) {
    let on_terminal = std::io::stdout().is_terminal();
    match generated {
        Some(pw) if !on_terminal => {
            use std::{io::Write, os::unix::fs::OpenOptionsExt};
            let path = data_dir.join("admin-password");
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .and_then(|mut f| writeln!(f, "{pw}"));
            match written {
                Ok(()) => println!(
                    "  An admin account admin@bazaar.local was created; its password is in {} (mode 0600).",
                    path.display()
                ),
                Err(e) => eprintln!("bazaar: cannot write {}: {e}", path.display()),
            }
        }
        Some(pw) => {
            println!();
            println!("  ┌─ An admin account was created (shown once, never logged) ─────────");
            println!("  │ email:    admin@bazaar.local");
            println!("  │ password: {pw}");
            println!("  └───────────────────────────────────────────────────────────────────");
            println!();
        }
        None => println!(
            "  An admin account admin@bazaar.local was created with BAZAAR_ADMIN_PASSWORD."
        ),
    }
}

fn prefix_for(service: ServiceName, colour: bool) -> String {
    let code = match service {
        ServiceName::Registry => 35,
        ServiceName::Identity => 36,
        ServiceName::Catalog => 33,
        ServiceName::Inventory => 34,
        ServiceName::Psp => 90,
        ServiceName::Payment => 91,
        ServiceName::Order => 93,
        ServiceName::Shipping => 94,
        ServiceName::Notification => 95,
        ServiceName::Gateway => 32,
    };
    if colour {
        format!("\x1b[{code}m{:>12} |\x1b[0m ", service.as_str())
    } else {
        format!("{:>12} | ", service.as_str())
    }
}

/// SIGTERM, then SIGKILL after the deadline.
async fn terminate(child: &mut Child, name: &str) {
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        if tokio::time::timeout(STOP_DEADLINE, child.wait())
            .await
            .is_ok()
        {
            return;
        }
        tracing::warn!(
            service = name,
            pid,
            "Did not stop within the deadline; killing."
        );
    }
    let _ = child.kill().await;
}

/// Polls `/readyz` until it answers 200.
async fn wait_ready(addr: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let url = format!("http://{addr}/readyz");
    let deadline = Instant::now() + READY_DEADLINE;
    let mut last = String::new();
    while Instant::now() < deadline {
        match client.get(&url).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = format!("readyz answered {}", r.status()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    anyhow::bail!("not ready: {last}")
}

fn print_ready_table(rows: &[ReadyRow], args: &UpArgs, took: Duration, generated: bool) {
    let gw = args.common.gateway_addr;
    println!();
    println!(
        "  Bazaar is up in {:.2} s ({} services, data in {})",
        took.as_secs_f64(),
        rows.len(),
        args.common.data_dir.display()
    );
    println!();
    println!("  {:<12} {:>8}  {:<22} HEALTH", "SERVICE", "PID", "ADDRESS");
    for r in rows {
        println!("  {:<12} {:>8}  {:<22} ready", r.service, r.pid, r.addr);
    }
    println!();
    println!("  Try:");
    println!("    curl http://{gw}/api/v1/products");
    println!("    open http://{gw}/docs            (API reference)");
    println!("    bazaar status                    (instances, health, memory)");
    if !generated {
        println!("    admin: admin@bazaar.local with BAZAAR_ADMIN_PASSWORD");
    }
    println!();
    println!("  Ctrl-C stops everything.");
    println!();
}

async fn run_in_process(
    args: UpArgs,
    admin_password: Option<String>,
    started: Instant,
) -> anyhow::Result<()> {
    let data_dir = args.common.data_dir.clone();
    let password = admin_password.clone();
    let mut running = Vec::new();
    let mut rows = Vec::new();
    let mut run = RunFile {
        supervisor_pid: std::process::id(),
        mode: "in-process".into(),
        gateway_url: format!("http://{}", args.common.gateway_addr),
        registry_url: args.common.registry_url.clone(),
        started_at: bazaar_runtime::time::now_unix(),
        processes: Vec::new(),
    };
    for service in ServiceName::ALL {
        let serve_args = ServeArgs {
            service,
            common: args.common.clone(),
            addr: None,
            grpc_addr: None,
            advertise_addr: None,
            instance_id: Some(format!("{}-1", service.as_str())),
            seed_demo: !args.no_demo,
            static_discovery: false,
        };
        let mut cfg = serve::ServiceConfig::from_args(serve_args)?;
        cfg.admin_password = password.clone();
        let built = serve::build(&cfg)
            .await
            .with_context(|| format!("start {}", service.as_str()))?;
        let addr = built.instance.http_addr.clone();
        let (tx, rx) = watch::channel(false);
        let handle = tokio::spawn(serve::run_built(built, stopped(rx)));
        wait_ready(&addr).await?;
        rows.push(ReadyRow {
            service: service.as_str(),
            pid: std::process::id(),
            addr: addr.clone(),
        });
        run.processes.push(RunProcess {
            service: service.as_str().into(),
            instance_id: format!("{}-1", service.as_str()),
            pid: std::process::id(),
            addr,
            started_at: run.started_at,
            restarts: 0,
        });
        running.push((tx, handle));
    }
    run.save(&data_dir)?;
    print_ready_table(&rows, &args, started.elapsed(), password.is_none());
    bazaar_runtime::shutdown::signal().await;
    eprintln!("bazaar: shutting down…");
    for (tx, handle) in running.into_iter().rev() {
        let _ = tx.send(true);
        let _ = handle.await;
    }
    let _ = std::fs::remove_file(RunFile::path(Path::new(&data_dir)));
    Ok(())
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.changed().await;
}
