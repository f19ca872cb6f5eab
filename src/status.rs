//! `bazaar status`: what is running, from `run.json`, the registry and each `/readyz`.

use std::time::Duration;

use serde::Serialize;

use crate::{
    cli::StatusArgs,
    run_file::{pid_alive, RunFile},
};

#[derive(Debug, Serialize)]
struct Row {
    service: String,
    instance_id: String,
    pid: u32,
    addr: String,
    registered: bool,
    health: String,
    uptime_secs: i64,
    rss_bytes: Option<u64>,
    restarts: u32,
}

pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let run = RunFile::load(&args.data_dir)?;
    if !pid_alive(run.supervisor_pid) {
        anyhow::bail!(
            "the `bazaar up` that wrote {} (pid {}) is not running",
            RunFile::path(&args.data_dir).display(),
            run.supervisor_pid
        );
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let registry = bazaar_discovery::RegistryClient::new(&run.registry_url);
    let registered: Vec<String> = match registry.list_all().await {
        Ok(all) => all.into_iter().map(|r| r.instance.instance_id).collect(),
        Err(_) => Vec::new(),
    };
    let now = bazaar_runtime::time::now_unix();
    let mut rows = Vec::new();
    for p in &run.processes {
        let health = match client.get(format!("http://{}/readyz", p.addr)).send().await {
            Ok(r) if r.status().is_success() => "ready".to_owned(),
            Ok(r) => format!("not ready ({})", r.status().as_u16()),
            Err(_) => "unreachable".to_owned(),
        };
        rows.push(Row {
            service: p.service.clone(),
            instance_id: p.instance_id.clone(),
            pid: p.pid,
            addr: p.addr.clone(),
            registered: p.service == "registry" || registered.contains(&p.instance_id),
            health,
            uptime_secs: now - p.started_at,
            rss_bytes: rss_bytes(p.pid),
            restarts: p.restarts,
        });
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "Bazaar ({}) — gateway {}, registry {}",
        run.mode, run.gateway_url, run.registry_url
    );
    println!();
    println!(
        "{:<12} {:<14} {:>8}  {:<22} {:<10} {:<12} {:>9} {:>9} {:>8}",
        "SERVICE",
        "INSTANCE",
        "PID",
        "ADDRESS",
        "REGISTERED",
        "HEALTH",
        "UPTIME",
        "RSS",
        "RESTARTS"
    );
    let mut total_rss = 0;
    for r in &rows {
        let rss = r
            .rss_bytes
            .map_or_else(|| "-".to_owned(), |b| format!("{:.1} MB", b as f64 / 1e6));
        total_rss += r.rss_bytes.unwrap_or(0);
        println!(
            "{:<12} {:<14} {:>8}  {:<22} {:<10} {:<12} {:>9} {:>9} {:>8}",
            r.service,
            r.instance_id,
            r.pid,
            r.addr,
            if r.registered { "yes" } else { "no" },
            r.health,
            uptime(r.uptime_secs),
            rss,
            r.restarts
        );
    }
    if run.mode == "processes" {
        println!();
        println!("total resident memory: {:.1} MB", total_rss as f64 / 1e6);
    }
    Ok(())
}

fn uptime(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Resident set size from /proc (Linux).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
