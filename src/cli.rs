//! Command-line interface: every flag also reads a `BAZAAR_*` environment variable.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A bad setting: the binary stops at start with a one-line message and exit code 64.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Bazaar: an e-commerce back end built as microservices.
#[derive(Debug, Parser)]
#[command(name = "bazaar", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the registry, every service and the gateway, each as its own process, and
    /// supervise them (restart on crash, graceful shutdown on Ctrl-C / SIGTERM).
    Up(UpArgs),
    /// Run one service in this process (what a container on Kubernetes runs).
    Serve(ServeArgs),
    /// Show the services of a running `bazaar up`: instances, health, uptime, memory.
    Status(StatusArgs),
    /// Measure the system: `bazaar bench gateway`.
    Bench(crate::bench::BenchArgs),
}

/// The services `bazaar serve` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum ServiceName {
    /// Service instances with TTL leases (discovery).
    Registry,
    /// Users, credentials and token signing keys.
    Identity,
    /// Products and prices.
    Catalog,
    /// The public edge: routing, auth, rate limits, cache, OpenAPI.
    Gateway,
}

impl ServiceName {
    /// Every service `bazaar up` starts, registry first, gateway last.
    pub const ALL: [ServiceName; 4] =
        [Self::Registry, Self::Identity, Self::Catalog, Self::Gateway];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registry => "registry",
            Self::Identity => "identity",
            Self::Catalog => "catalog",
            Self::Gateway => "gateway",
        }
    }
}

/// Settings shared by `up` and `serve`.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Directory for SQLite files and `run.json`.
    #[arg(long, env = "BAZAAR_DATA_DIR", default_value = ".bazaar")]
    pub data_dir: PathBuf,

    /// Database URL template; `{service}` is replaced by the service name, e.g.
    /// `postgres://postgres@127.0.0.1/bazaar_{service}` (databases are created if missing).
    /// Default: one SQLite file per service in the data directory.
    #[arg(long, env = "BAZAAR_DATABASE_URL")]
    pub database_url: Option<String>,

    /// The registry's URL. Services register there and find each other through it.
    #[arg(
        long,
        env = "BAZAAR_REGISTRY_URL",
        default_value = "http://127.0.0.1:8090"
    )]
    pub registry_url: String,

    /// The gateway's listen address.
    #[arg(long, env = "BAZAAR_GATEWAY_ADDR", default_value = "127.0.0.1:8080")]
    pub gateway_addr: SocketAddr,

    /// Registry lease time-to-live (heartbeats every third of it), e.g. `10s`, `500ms`.
    #[arg(long, env = "BAZAAR_LEASE_TTL", default_value = "10s", value_parser = parse_duration)]
    pub lease_ttl: Duration,

    /// Per-user rate limit at the gateway: `RATE/s,burst=N` (or just `RATE`, burst 2×RATE).
    #[arg(
        long,
        env = "BAZAAR_RATE_LIMIT_USER",
        default_value = "100/s,burst=200"
    )]
    pub rate_limit_user: String,

    /// Per-IP rate limit at the gateway for anonymous requests.
    #[arg(long, env = "BAZAAR_RATE_LIMIT_ANON", default_value = "50/s,burst=100")]
    pub rate_limit_anon: String,

    /// A TOML file that replaces the gateway's built-in route table
    /// (see services/gateway/routes.example.toml).
    #[arg(long, env = "BAZAAR_GATEWAY_ROUTES")]
    pub gateway_routes: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Run every service inside this one process (a modular monolith) instead of one process each.
    #[arg(long)]
    pub in_process: bool,

    /// Do not seed the demo catalog.
    #[arg(long)]
    pub no_demo: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Which service to run.
    #[arg(value_enum)]
    pub service: ServiceName,

    #[command(flatten)]
    pub common: CommonArgs,

    /// Listen address for this service's HTTP port. Default: `127.0.0.1:0` (any free port),
    /// the gateway's address for the gateway, the registry URL's port for the registry.
    #[arg(long, env = "BAZAAR_ADDR")]
    pub addr: Option<SocketAddr>,

    /// The `host:port` other services should use to reach this instance (Kubernetes: the pod
    /// IP). Default: the bound address.
    #[arg(long, env = "BAZAAR_ADVERTISE_ADDR")]
    pub advertise_addr: Option<String>,

    /// This instance's id in the registry. Default: `<service>-<random>`.
    #[arg(long, env = "BAZAAR_INSTANCE_ID")]
    pub instance_id: Option<String>,

    /// Seed the demo catalog when the catalog is empty.
    #[arg(long, env = "BAZAAR_SEED_DEMO")]
    pub seed_demo: bool,

    /// Find other services through `BAZAAR_SERVICE_<NAME>=host:port,…` (or DNS names, e.g.
    /// Kubernetes headless Services) instead of the registry, and do not register.
    #[arg(long, env = "BAZAAR_STATIC_DISCOVERY")]
    pub static_discovery: bool,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The data directory of the running `bazaar up`.
    #[arg(long, env = "BAZAAR_DATA_DIR", default_value = ".bazaar")]
    pub data_dir: PathBuf,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Parses `250ms`, `10s`, `5m`, `1h` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (try 10s, 500ms, 5m)"))?;
    let secs = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` in `{s}` (use ms, s, m or h)"
            ))
        }
    };
    if !secs.is_finite() || !(0.0..=86_400.0 * 365.0).contains(&secs) {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_with_units() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("10 parsecs").is_err());
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
