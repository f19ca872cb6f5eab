//! `bazaar bench gateway`: the same closed-loop load against the upstream directly, through
//! the gateway (public route; JWT + rate-limited route) and through nginx, on 127.0.0.1.

use std::{
    net::SocketAddr,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use bazaar_auth::{Claims, JwkSet, SigningKey};
use clap::Args;
use http::HeaderValue;

use super::{
    cpu::{process_tree_cpu, CpuFigures},
    loadgen::{self, Workload},
    nginx,
    process::{bazaar_command, listening_addr, ChildProc, TempDir},
    progress::Progress,
    report::{format_count, format_micros, GatewayReport, GatewaySettings, Measured, Target},
    upstream,
};
use crate::cli::{parse_duration, UsageError};

/// Uncounted requests before the unloaded run, so it does not measure the first connection.
const UNLOADED_WARMUP: u64 = 200;
/// A rate limit no bench can reach: limiting runs, but never refuses.
const RATE_OUT_OF_THE_WAY: &str = "1000000/s,burst=2000000";
/// The JWT route's own limit per user, as high.
const ROUTE_RATE_PER_SECOND: u64 = 1_000_000;
const ROUTE_RATE_BURST: u64 = 2_000_000;
/// Tokens live 15 minutes; the auth phase must end before they expire.
const MAX_PHASE: Duration = Duration::from_secs(10 * 60);
/// How long each server may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopping server may take.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// `bazaar bench gateway`.
#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// Concurrent keep-alive connections of the load generator.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub connections: u64,

    /// Measured time per target, e.g. `20s`.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Load before measuring, per target, e.g. `2s`.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Worker threads of the gateway and the upstream (TOKIO_WORKER_THREADS), and nginx's
    /// worker_processes: the same CPU budget for every proxy.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub workers: u64,

    /// Sequential requests of the unloaded run per target.
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub unloaded_requests: u64,

    /// Distinct valid tokens the JWT route's requests cycle through.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub tokens: u64,

    /// Print one JSON object with every figure instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    if args.warmup + args.duration > MAX_PHASE || args.duration.is_zero() {
        return Err(UsageError(format!(
            "--duration must be above 0 and --warmup + --duration at most {} s (the bench's tokens live 15 minutes)",
            MAX_PHASE.as_secs()
        ))
        .into());
    }
    let workers = usize::try_from(args.workers)?;
    let connections = usize::try_from(args.connections)?;
    let progress = Progress::new();
    let dir = TempDir::new("gateway")?;
    let key = SigningKey::generate().context("generate the bench signing key")?;
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(
        &jwks_file,
        serde_json::to_vec(&JwkSet {
            keys: vec![key.public_jwk()],
        })?,
    )?;
    let routes_file = dir.path().join("routes.toml");
    std::fs::write(&routes_file, routes_toml())?;

    let (upstream, upstream_addr) = upstream::start(workers, &jwks_file).await?;
    progress.note(&format!(
        "upstream on {upstream_addr} ({workers} worker threads)"
    ));
    let no_tokens: Arc<[HeaderValue]> = Arc::from(Vec::new());
    let mut measured = Vec::new();

    let direct = Workload::new(upstream_addr, "/bench/direct/item", no_tokens.clone());
    wait_until_ok(&direct, None).await?;
    measured.push(measure(Target::Direct, &direct, &upstream, &args, &progress).await?);

    let (gateway, gateway_addr) =
        start_gateway(workers, upstream_addr, &routes_file, dir.path()).await?;
    progress.note(&format!(
        "gateway on {gateway_addr} ({workers} worker threads)"
    ));
    let public = Workload::new(gateway_addr, "/bench/public/item", no_tokens.clone());
    wait_until_ok(&public, Some(&gateway)).await?;
    let probe_token = Workload::new(gateway_addr, "/bench/auth/item", sign_tokens(&key, 1)?);
    wait_until_ok(&probe_token, Some(&gateway)).await?;
    measured.push(measure(Target::GatewayPublic, &public, &gateway, &args, &progress).await?);
    // Signed now, so they are fresh for the whole auth phase.
    let auth = Workload::new(
        gateway_addr,
        "/bench/auth/item",
        sign_tokens(&key, usize::try_from(args.tokens)?)?,
    );
    measured.push(measure(Target::GatewayAuth, &auth, &gateway, &args, &progress).await?);
    gateway.stop(STOP_GRACE).await?;

    measured.push(match nginx::find() {
        None => {
            progress.note(nginx::NOT_INSTALLED);
            skipped(nginx::NOT_INSTALLED.trim_end_matches(": skipped"))
        }
        Some(bin) => {
            let nginx_dir = dir.path().join("nginx");
            std::fs::create_dir_all(&nginx_dir)?;
            match nginx::start(&bin, workers, upstream_addr, &nginx_dir).await {
                Ok((nginx, addr)) => {
                    progress.note(&format!("nginx on {addr} (worker_processes {workers})"));
                    let through_nginx = Workload::new(addr, "/bench/nginx/item", no_tokens.clone());
                    wait_until_ok(&through_nginx, Some(&nginx)).await?;
                    let m =
                        measure(Target::Nginx, &through_nginx, &nginx, &args, &progress).await?;
                    nginx.stop(STOP_GRACE).await?;
                    m
                }
                Err(e) => {
                    progress.note(&format!("nginx did not start, skipped: {e:#}"));
                    skipped(&format!("nginx did not start: {e:#}"))
                }
            }
        }
    });
    upstream.stop(STOP_GRACE).await?;

    let settings = GatewaySettings {
        connections,
        duration_s: args.duration.as_secs_f64(),
        warmup_s: args.warmup.as_secs_f64(),
        workers,
        unloaded_requests: args.unloaded_requests,
        tokens: usize::try_from(args.tokens)?,
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    };
    let report = GatewayReport::build(settings, measured);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!();
        print!("{}", report.render());
    }
    Ok(())
}

fn skipped(reason: &str) -> Measured {
    Measured {
        target: Target::Nginx,
        skipped: Some(reason.to_owned()),
        load: None,
        unloaded: None,
    }
}

/// The closed-loop run, then the unloaded run, of one target.
async fn measure(
    target: Target,
    workload: &Workload,
    server: &ChildProc,
    args: &GatewayArgs,
    progress: &Progress,
) -> anyhow::Result<Measured> {
    let label = target.label();
    let total = args.warmup + args.duration;
    let connections = usize::try_from(args.connections)?;
    let began = Instant::now();
    let cpu_window = tokio::spawn(cpu_during(server.pid(), args.warmup, args.duration));
    let load = loadgen::closed_loop(
        workload,
        connections,
        args.warmup,
        args.duration,
        |elapsed| progress.update(label, "load", elapsed, total),
    )
    .await?;
    let mut figures = load.load_figures();
    figures.server_cpu = cpu_window
        .await
        .ok()
        .flatten()
        .and_then(|cpu| CpuFigures::new(cpu, args.duration, figures.requests_ok));
    progress.done(
        label,
        "load",
        began.elapsed(),
        total,
        &format!(
            "{} req/s, p50 {}, {} errors",
            format_count(figures.requests_per_second),
            format_micros(figures.latency.p50_us),
            figures.errors
        ),
    );
    // Let the sockets of the loaded run close before the unloaded one starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let began = Instant::now();
    progress.update(label, "unloaded", Duration::ZERO, Duration::ZERO);
    let unloaded = loadgen::sequential(workload, UNLOADED_WARMUP, args.unloaded_requests).await?;
    let u = unloaded.unloaded_figures();
    let took = began.elapsed();
    progress.done(
        label,
        "unloaded",
        took,
        took,
        &format!(
            "p50 {}, p99 {}, {} errors",
            format_micros(u.latency.p50_us),
            format_micros(u.latency.p99_us),
            u.errors
        ),
    );
    Ok(Measured {
        target,
        skipped: None,
        load: Some(figures),
        unloaded: Some(u),
    })
}

/// CPU time `pid` (and its children) use in the measured window: from `warmup` to
/// `warmup + duration` from now.
async fn cpu_during(pid: Option<u32>, warmup: Duration, duration: Duration) -> Option<Duration> {
    let pid = pid?;
    tokio::time::sleep(warmup).await;
    let before = process_tree_cpu(pid)?;
    tokio::time::sleep(duration).await;
    process_tree_cpu(pid)?.checked_sub(before)
}

/// `n` valid access tokens for distinct users, as `Authorization` values.
fn sign_tokens(key: &SigningKey, n: usize) -> anyhow::Result<Arc<[HeaderValue]>> {
    let now = bazaar_auth::unix_now();
    let tokens = (0..n)
        .map(|_| {
            let user = uuid::Uuid::new_v4().to_string();
            let token = key.sign(&Claims::new_access(&user, vec!["customer".into()], now))?;
            Ok(HeaderValue::try_from(format!("Bearer {token}"))?)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(tokens.into())
}

/// The route table the gateway runs with: both bench routes and nothing else.
///
/// The public route has no limit of its own: the per-IP default applies, and the bench raises
/// it out of the way through `BAZAAR_RATE_LIMIT_ANON`. The JWT route has its own per-user
/// limit, so the rate limiter keeps a bucket per token's user, raised out of the way too.
pub fn routes_toml() -> String {
    format!(
        r#"# Written by `bazaar bench gateway`.

[[route]]
prefix = "/bench/public"
service = "bench"
auth = "public"
cache_ttl_ms = 0
timeout_ms = 10000

[[route]]
prefix = "/bench/auth"
service = "bench"
auth = "required"
cache_ttl_ms = 0
timeout_ms = 10000
rate_limit = {{ per_second = {per_second}, burst = {burst}, key = "caller" }}
"#,
        per_second = ROUTE_RATE_PER_SECOND,
        burst = ROUTE_RATE_BURST,
    )
}

/// `bazaar serve gateway` on a free port, finding the upstream (as `bench`, and as
/// `identity` for the JWKS) through static discovery.
async fn start_gateway(
    workers: usize,
    upstream: SocketAddr,
    routes: &Path,
    data_dir: &Path,
) -> anyhow::Result<(ChildProc, SocketAddr)> {
    let mut cmd = bazaar_command()?;
    cmd.args([
        "serve",
        "gateway",
        "--addr",
        "127.0.0.1:0",
        "--static-discovery",
    ]);
    cmd.env("TOKIO_WORKER_THREADS", workers.to_string())
        .env("BAZAAR_SERVICE_BENCH", upstream.to_string())
        .env("BAZAAR_SERVICE_IDENTITY", upstream.to_string())
        .env("BAZAAR_GATEWAY_ROUTES", routes)
        .env("BAZAAR_RATE_LIMIT_USER", RATE_OUT_OF_THE_WAY)
        .env("BAZAAR_RATE_LIMIT_ANON", RATE_OUT_OF_THE_WAY)
        .env("BAZAAR_DATA_DIR", data_dir)
        .env("BAZAAR_LOG_FORMAT", "json")
        // The gateway stops by itself if the bench dies without cleaning up.
        .env("BAZAAR_SUPERVISOR_PID", std::process::id().to_string());
    cmd.kill_on_drop(true);
    let mut child = ChildProc::spawn("gateway", cmd)?;
    let addr = child
        .wait_for_line(READY_TIMEOUT, |line| listening_addr(line, "bazaar-serve: "))
        .await?;
    Ok((child, addr))
}

/// Polls the workload's path until it answers 2xx, so no phase measures a start-up.
async fn wait_until_ok(workload: &Workload, child: Option<&ChildProc>) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut last = String::new();
    while Instant::now() < deadline {
        match loadgen::probe(workload).await {
            Ok((status, _)) if status.is_success() => return Ok(()),
            Ok((status, body)) => last = format!("{status}: {}", String::from_utf8_lossy(&body)),
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tail = child
        .map(|c| format!("\n  its output:\n    {}", c.tail()))
        .unwrap_or_default();
    anyhow::bail!(
        "GET http://{}{} did not answer 2xx within {READY_TIMEOUT:?} (last: {last}){tail}",
        workload.addr,
        workload.path
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_tokens_are_distinct_bearer_tokens() {
        let key = SigningKey::generate().unwrap();
        let tokens = sign_tokens(&key, 3).unwrap();
        assert_eq!(tokens.len(), 3);
        assert!(tokens
            .iter()
            .all(|t| t.to_str().unwrap().starts_with("Bearer ey")));
        assert_ne!(tokens[0], tokens[1]);
    }

    #[test]
    fn the_gateway_accepts_the_bench_route_table() {
        let table = bazaar_gateway::RouteTable::from_toml_str(&routes_toml()).unwrap();
        let public = table.find("/bench/public/item").unwrap();
        assert!(public.rate_limit.is_none());
        let auth = table.find("/bench/auth/item").unwrap();
        assert_eq!(auth.auth, bazaar_gateway::AuthPolicy::Required);
        assert!(auth.rate_limit.is_some());
        assert!(table.find("/api/v1/products").is_none());
    }
}
