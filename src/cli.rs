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
    /// Put an open-model load (a seeded scenario mix at a constant arrival rate) on a
    /// running shop and report latency and answers per operation.
    Load(crate::load::LoadArgs),
    /// Check a shop's final state against what its clients were told (after `load` or
    /// `chaos`): no lost order, no double charge, stock conserved, sagas consistent,
    /// messages drained, no panics. Exits 1 on any violation.
    Check(crate::check::CheckArgs),
    /// A seeded fault experiment: starts its own shop with replicas, loads it, kills, pauses
    /// and cuts off its parts, heals, waits for quiescence, checks every invariant and
    /// writes a report. Exits 1 on any violation.
    Chaos(crate::chaos::ChaosArgs),
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
    /// Stock per SKU, reservations and the movement ledger.
    Inventory,
    /// The external card processor stand-in (test tokens, injectable latency and failure).
    Psp,
    /// Payments for orders, in front of the card processor.
    Payment,
    /// Orders, the placement saga and the order-history read model.
    Order,
    /// Shipments of confirmed orders (and the carrier stand-in).
    Shipping,
    /// Per-user notifications.
    Notification,
    /// The public edge: routing, auth, rate limits, cache, OpenAPI.
    Gateway,
}

impl ServiceName {
    /// Every service `bazaar up` starts, registry first, gateway last.
    pub const ALL: [ServiceName; 10] = [
        Self::Registry,
        Self::Identity,
        Self::Catalog,
        Self::Inventory,
        Self::Psp,
        Self::Payment,
        Self::Order,
        Self::Shipping,
        Self::Notification,
        Self::Gateway,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registry => "registry",
            Self::Identity => "identity",
            Self::Catalog => "catalog",
            Self::Inventory => "inventory",
            Self::Psp => "psp",
            Self::Payment => "payment",
            Self::Order => "order",
            Self::Shipping => "shipping",
            Self::Notification => "notification",
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

    /// The message bus: `feeds` (each producer serves its outbox over HTTP; no broker) or a
    /// NATS JetStream URL such as `nats://127.0.0.1:4222`.
    #[arg(long, env = "BAZAAR_BUS", default_value = "feeds")]
    pub bus: String,

    /// A prefix for this deployment's NATS streams, subjects and consumers, so several
    /// deployments (or test runs) can share one NATS server.
    #[arg(long, env = "BAZAAR_BUS_NAMESPACE")]
    pub bus_namespace: Option<String>,

    /// Attempts of a failing event handler before the event is dead-lettered.
    #[arg(long, env = "BAZAAR_BUS_MAX_ATTEMPTS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub bus_max_attempts: u32,

    /// The delay after a handler's first failure (doubling up to 5 s, with jitter).
    #[arg(long, env = "BAZAAR_BUS_RETRY_BASE", default_value = "100ms", value_parser = parse_duration)]
    pub bus_retry_base: Duration,

    /// JetStream: how long a delivered, unacknowledged event waits before it is delivered
    /// again (a consumer that died mid-handling is noticed after this long).
    #[arg(long, env = "BAZAAR_BUS_ACK_WAIT", default_value = "30s", value_parser = parse_duration)]
    pub bus_ack_wait: Duration,

    /// The card processor's base URL. Default: the `psp` stand-in, found through discovery.
    #[arg(long, env = "BAZAAR_PSP_URL")]
    pub psp_url: Option<String>,

    /// How long the payment service waits for the card processor.
    #[arg(long, env = "BAZAAR_PAYMENT_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub payment_timeout: Duration,

    /// How long an order may wait in `payment_pending` before it is rejected.
    #[arg(long, env = "BAZAAR_PAYMENT_PENDING_DEADLINE", default_value = "5m", value_parser = parse_duration)]
    pub payment_pending_deadline: Duration,

    /// How long shipping waits after confirmation before it claims and dispatches an order.
    #[arg(long, env = "BAZAAR_HANDLING_TIME", default_value = "2s", value_parser = parse_duration)]
    pub handling_time: Duration,
}

impl CommonArgs {
    /// The bus URL for the messaging crate: `None` for feeds.
    pub fn bus_url(&self) -> Result<Option<String>, UsageError> {
        match self.bus.as_str() {
            "" | "feeds" => Ok(None),
            url if url.starts_with("nats://") => Ok(Some(url.to_owned())),
            other => Err(UsageError(format!(
                "BAZAAR_BUS `{other}` must be `feeds` or a nats:// URL"
            ))),
        }
    }
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

    /// Instances per service, e.g. `order=2,inventory=2,payment=2,gateway=2` (1–8 each; every
    /// service but the registry). Replicas share their service's database and register
    /// separately; gateway replicas share the gateway's port (`SO_REUSEPORT`).
    #[arg(long, env = "BAZAAR_REPLICAS", value_parser = parse_replicas, default_value = "")]
    pub replicas: Replicas,
}

/// Instances per service for `bazaar up --replicas`; services not named run once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replicas(pub std::collections::BTreeMap<&'static str, u32>);

impl Replicas {
    /// How many instances of `service` to run.
    pub fn of(&self, service: ServiceName) -> u32 {
        self.0.get(service.as_str()).copied().unwrap_or(1)
    }
}

/// Parses `order=2,inventory=2`.
pub fn parse_replicas(s: &str) -> Result<Replicas, String> {
    let mut out = std::collections::BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, n) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}`: expected <service>=<count>"))?;
        let service = ServiceName::ALL
            .into_iter()
            .find(|s| s.as_str() == name.trim())
            .ok_or_else(|| format!("`{part}`: no service is called `{}`", name.trim()))?;
        if service == ServiceName::Registry {
            return Err("the registry runs once (it is the one fixed address)".into());
        }
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("`{part}`: the count must be a whole number"))?;
        if !(1..=8).contains(&n) {
            return Err(format!("`{part}`: the count must be 1–8"));
        }
        if out.insert(service.as_str(), n).is_some() {
            return Err(format!("`{}` is named twice", service.as_str()));
        }
    }
    Ok(Replicas(out))
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

    /// Listen address for this service's gRPC port (services with an internal gRPC API).
    /// Default: `127.0.0.1:0` (any free port).
    #[arg(long, env = "BAZAAR_GRPC_ADDR")]
    pub grpc_addr: Option<SocketAddr>,

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
    fn parses_replica_counts_and_names_the_bad_part() {
        let r = parse_replicas("order=2, inventory=3,gateway=1").unwrap();
        assert_eq!(r.of(ServiceName::Order), 2);
        assert_eq!(r.of(ServiceName::Inventory), 3);
        assert_eq!(r.of(ServiceName::Gateway), 1);
        assert_eq!(r.of(ServiceName::Payment), 1);
        assert_eq!(parse_replicas("").unwrap(), Replicas::default());
        for (bad, says) in [
            ("registry=2", "registry"),
            ("order", "expected"),
            ("ordr=2", "ordr"),
            ("order=0", "1–8"),
            ("order=9", "1–8"),
            ("order=x", "whole number"),
            ("order=2,order=3", "twice"),
        ] {
            let err = parse_replicas(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

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
