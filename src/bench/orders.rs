//! `bazaar bench orders`: how many orders the whole shop confirms per second.
//!
//! Each configuration starts the real `bazaar up` (this binary) in a temporary data
//! directory on free ports: first the embedded default (feeds + SQLite, always), then NATS +
//! PostgreSQL when servers are given. Before the clock starts it sets every demo product's
//! stock high, registers one customer per client and logs them in, and places one probe
//! order. Then, with the same clients: a few seconds of authenticated product reads through
//! the gateway (the baseline, measured in the same shop), and the placement load itself —
//! each client in a closed loop POSTing an order with `Prefer: wait=30` and counting it when
//! the answer is 201 `confirmed`. Shipping's handling time is set to an hour, so no shipment
//! work runs during the measurement: the figure is placement (order, inventory, payment,
//! the card processor stand-in, the events between them), not fulfilment.
//!
//! Figures are as measured; the goal line only compares. SQLite runs with its default
//! durability (`synchronous=FULL`) unless `--sqlite-synchronous normal` says otherwise, and
//! then the report says so and does not judge the goal.

mod cleanup;
mod load;
mod report;
mod stack;
mod workload;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use clap::{Args, ValueEnum};

use self::{
    cleanup::External,
    report::{
        ConfigMeasured, ConfigReport, Configuration, OrdersReport, OrdersSettings,
        PlacementFigures, ReadFigures, SetupFigures,
    },
    stack::{Backends, Stack, HANDLING_TIME},
    workload::{PlaceOrder, ReadProduct, PREFER_WAIT_SECS},
};
use super::{
    progress::Progress,
    report::{format_count, format_micros},
};
use crate::cli::{parse_duration, UsageError};

pub use cleanup::clean_up_interrupted;

/// Tokens live 15 minutes: every phase after the logins must end well before that.
const MAX_MEASURED: Duration = Duration::from_secs(10 * 60);
/// Uncounted reads before the read baseline.
const READS_WARMUP: Duration = Duration::from_secs(1);

/// `bazaar bench orders`.
#[derive(Debug, Clone, Args)]
pub struct OrdersArgs {
    /// Concurrent clients, each its own customer and keep-alive connection.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub clients: u64,

    /// Measured placement time per configuration, e.g. `20s`.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Placement load before measuring, e.g. `3s`.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Measured time of the product-read baseline, e.g. `5s`.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub reads_duration: Duration,

    /// Also run NATS + PostgreSQL with this PostgreSQL server (a server URL such as
    /// `postgres://postgres@127.0.0.1:5432`; the bench creates and drops its own databases).
    /// Needs --nats.
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,

    /// The NATS server (JetStream) of the NATS + PostgreSQL run, e.g. `nats://127.0.0.1:4222`.
    /// Needs --postgres.
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,

    /// Also run NATS + PostgreSQL on the servers of `BAZAAR_TEST_POSTGRES_URL` and
    /// `BAZAAR_TEST_NATS_URL` (--postgres / --nats take precedence).
    #[arg(long)]
    pub both: bool,

    /// SQLite's durability: `full` (the default of the shop: every commit is fsynced) or
    /// `normal` (commits survive a crash of the process, not of the machine). A run with
    /// `normal` is labelled as such and the goal is not judged.
    #[arg(long, value_enum, default_value_t = SqliteSynchronous::Full)]
    pub sqlite_synchronous: SqliteSynchronous,

    /// Print one JSON object with every figure instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// SQLite's `synchronous` pragma for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SqliteSynchronous {
    Full,
    Normal,
}

impl SqliteSynchronous {
    fn as_str(self) -> &'static str {
        match self {
            SqliteSynchronous::Full => "full",
            SqliteSynchronous::Normal => "normal",
        }
    }
}

/// The PostgreSQL and NATS servers of the second configuration, if it is to run.
pub fn nats_postgres_servers(
    postgres: Option<&str>,
    nats: Option<&str>,
    both: bool,
    env_postgres: Option<&str>,
    env_nats: Option<&str>,
) -> Result<Option<(String, String)>, UsageError> {
    let env_postgres = env_postgres.filter(|v| both && !v.is_empty());
    let env_nats = env_nats.filter(|v| both && !v.is_empty());
    let pg = postgres.or(env_postgres);
    let nats = nats.or(env_nats);
    match (pg, nats) {
        (Some(pg), Some(nats)) => Ok(Some((pg.to_owned(), nats.to_owned()))),
        (None, None) if !both => Ok(None),
        (None, _) if both => Err(UsageError(
            "--both needs a PostgreSQL server: --postgres URL or BAZAAR_TEST_POSTGRES_URL".into(),
        )),
        (_, None) if both => Err(UsageError(
            "--both needs a NATS server: --nats URL or BAZAAR_TEST_NATS_URL".into(),
        )),
        (None, _) => Err(UsageError(
            "--nats needs --postgres URL too: the second configuration is NATS + PostgreSQL".into(),
        )),
        (_, None) => Err(UsageError(
            "--postgres needs --nats URL too: the second configuration is NATS + PostgreSQL".into(),
        )),
    }
}

pub async fn run(args: OrdersArgs) -> anyhow::Result<()> {
    if args.duration.is_zero() || args.reads_duration.is_zero() {
        return Err(UsageError("--duration and --reads-duration must be above 0".into()).into());
    }
    if args.warmup + args.duration + READS_WARMUP + args.reads_duration > MAX_MEASURED {
        return Err(UsageError(format!(
            "--warmup + --duration + --reads-duration must stay under {} s (the customers' tokens live 15 minutes)",
            MAX_MEASURED.as_secs()
        ))
        .into());
    }
    let env = |k: &str| std::env::var(k).ok();
    let second = nats_postgres_servers(
        args.postgres.as_deref(),
        args.nats.as_deref(),
        args.both,
        env("BAZAAR_TEST_POSTGRES_URL").as_deref(),
        env("BAZAAR_TEST_NATS_URL").as_deref(),
    )?;
    let run_name = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let external = second
        .map(|(pg, nats)| External::new(&pg, &nats, &run_name))
        .transpose()?;
    let clients = usize::try_from(args.clients)?;
    let progress = Progress::new();
    progress.note(&format!(
        "shipping's handling time is {HANDLING_TIME} for this run: no shipment is claimed or dispatched while placement is measured"
    ));

    let mut configurations = vec![
        run_configuration(
            Configuration::FeedsSqlite,
            &Backends::FeedsSqlite,
            &args,
            &progress,
        )
        .await,
    ];
    configurations.push(match external {
        Some(external) => {
            run_configuration(
                Configuration::NatsPostgres,
                &Backends::NatsPostgres(external),
                &args,
                &progress,
            )
            .await
        }
        None => ConfigReport::skipped(
            Configuration::NatsPostgres,
            "not asked for (--postgres URL --nats URL, or --both with BAZAAR_TEST_POSTGRES_URL and BAZAAR_TEST_NATS_URL)",
        ),
    });

    let settings = OrdersSettings {
        clients,
        duration_s: args.duration.as_secs_f64(),
        warmup_s: args.warmup.as_secs_f64(),
        reads_duration_s: args.reads_duration.as_secs_f64(),
        reads_warmup_s: READS_WARMUP.as_secs_f64(),
        prefer_wait_s: PREFER_WAIT_SECS,
        handling_time: HANDLING_TIME.to_owned(),
        sqlite_synchronous: args.sqlite_synchronous.as_str().to_owned(),
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    };
    let report = OrdersReport::build(settings, configurations);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!();
        print!("{}", report.render());
    }
    let failed: Vec<&str> = report
        .configurations
        .iter()
        .filter(|c| c.failed.is_some())
        .map(|c| c.label)
        .collect();
    if !failed.is_empty() {
        anyhow::bail!("{} failed (see the report above)", failed.join(" and "));
    }
    Ok(())
}

/// One configuration from start to clean-up; a failure becomes the report's `failed` line.
async fn run_configuration(
    configuration: Configuration,
    backends: &Backends,
    args: &OrdersArgs,
    progress: &Progress,
) -> ConfigReport {
    let label = configuration.label();
    if let Backends::NatsPostgres(external) = backends {
        cleanup::remember(external);
    }
    let result = start_and_measure(configuration, backends, args, progress).await;
    let cleanup = match backends {
        Backends::NatsPostgres(external) => {
            let cleanup = cleanup::clean_up(external).await;
            progress.note(&format!("{label}: {}", cleanup.summary()));
            Some(cleanup)
        }
        Backends::FeedsSqlite => None,
    };
    match result {
        Ok(mut measured) => {
            measured.cleanup = cleanup;
            ConfigReport::measured(measured)
        }
        Err(e) => {
            progress.note(&format!("{label} failed: {e:#}"));
            ConfigReport::failed(configuration, format!("{e:#}"))
        }
    }
}

/// Starts the shop, measures it and stops it (also when the measurement fails).
async fn start_and_measure(
    configuration: Configuration,
    backends: &Backends,
    args: &OrdersArgs,
    progress: &Progress,
) -> anyhow::Result<ConfigMeasured> {
    let label = configuration.label();
    progress.note(&format!("{label}: starting bazaar up…"));
    let synchronous = match args.sqlite_synchronous {
        SqliteSynchronous::Full => None,
        SqliteSynchronous::Normal => Some("normal"),
    };
    let stack = Stack::start(backends, synchronous).await?;
    progress.note(&format!(
        "{label}: ready in {:.1} s (gateway on {})",
        stack.ready.as_secs_f64(),
        stack.gateway
    ));
    let measured = measure(configuration, &stack, args, progress).await;
    let stopped = stack.stop().await;
    let measured = measured?;
    stopped?;
    Ok(measured)
}

async fn measure(
    configuration: Configuration,
    stack: &Stack,
    args: &OrdersArgs,
    progress: &Progress,
) -> anyhow::Result<ConfigMeasured> {
    let label = configuration.label();
    let clients = usize::try_from(args.clients)?;
    let prepared = stack.prepare(clients, label, progress).await?;
    progress.note(&format!(
        "{label}: set up {clients} customers, {} products and a confirmed probe order in {:.1} s",
        prepared.products.len(),
        prepared.setup.as_secs_f64()
    ));

    let total = READS_WARMUP + args.reads_duration;
    let began = Instant::now();
    let reads = load::closed_loop(
        stack.gateway,
        Arc::new(ReadProduct::new(
            prepared.authorizations.clone(),
            &prepared.products,
        )),
        clients,
        READS_WARMUP,
        args.reads_duration,
        |elapsed, ok| progress.update(label, &format!("reads ({ok} ok)"), elapsed, total),
    )
    .await?;
    progress.done(
        label,
        "reads",
        began.elapsed(),
        total,
        &format!(
            "{} reads/s, p50 {}, {} errors",
            format_count(reads.per_second()),
            format_micros(reads.latency().p50_us),
            reads.not_ok()
        ),
    );

    let total = args.warmup + args.duration;
    let began = Instant::now();
    let orders = load::closed_loop(
        stack.gateway,
        Arc::new(PlaceOrder::new(
            prepared.authorizations.clone(),
            &prepared.products,
        )?),
        clients,
        args.warmup,
        args.duration,
        |elapsed, ok| progress.update(label, &format!("orders ({ok} confirmed)"), elapsed, total),
    )
    .await?;
    progress.done(
        label,
        "orders",
        began.elapsed(),
        total,
        &format!(
            "{} confirmed orders/s, p50 {}, p99 {}, {} not confirmed",
            format_count(orders.per_second()),
            format_micros(orders.latency().p50_us),
            format_micros(orders.latency().p99_us),
            orders.not_ok()
        ),
    );

    Ok(ConfigMeasured {
        configuration,
        setup: SetupFigures {
            ready_s: stack.ready.as_secs_f64(),
            setup_s: prepared.setup.as_secs_f64(),
            customers: prepared.authorizations.len(),
            products: prepared.products.len(),
            refused_logins: prepared.refused_logins,
        },
        reads: ReadFigures {
            ok: reads.ok,
            per_second: reads.per_second(),
            latency: reads.latency(),
            errors: reads.not_ok(),
            error_breakdown: reads.others.clone(),
        },
        orders: PlacementFigures {
            confirmed: orders.ok,
            confirmed_per_second: orders.per_second(),
            latency: orders.latency(),
            not_confirmed: orders.not_ok(),
            not_confirmed_breakdown: orders.others.clone(),
        },
        cleanup: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn parse(args: &[&str]) -> Result<OrdersArgs, clap::Error> {
        let argv = ["bazaar", "bench", "orders"].iter().chain(args.iter());
        let cli = crate::cli::Cli::try_parse_from(argv)?;
        match cli.command {
            crate::cli::Command::Bench(b) => match b.what {
                super::super::BenchWhat::Orders(a) => Ok(a),
                other => panic!("parsed as {other:?}"),
            },
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn the_defaults_are_64_clients_for_20_seconds_on_sqlite_with_full_durability() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.clients, 64);
        assert_eq!(a.duration, Duration::from_secs(20));
        assert_eq!(a.warmup, Duration::from_secs(3));
        assert_eq!(a.reads_duration, Duration::from_secs(5));
        assert_eq!(a.sqlite_synchronous, SqliteSynchronous::Full);
        assert!(!a.both && !a.json && a.postgres.is_none() && a.nats.is_none());
    }

    #[test]
    fn flags_are_read() {
        let a = parse(&[
            "--clients",
            "8",
            "--duration",
            "10s",
            "--postgres",
            "postgres://postgres@127.0.0.1:5432",
            "--nats",
            "nats://127.0.0.1:4222",
            "--sqlite-synchronous",
            "normal",
            "--json",
        ])
        .unwrap();
        assert_eq!(a.clients, 8);
        assert_eq!(a.duration, Duration::from_secs(10));
        assert_eq!(
            a.postgres.as_deref(),
            Some("postgres://postgres@127.0.0.1:5432")
        );
        assert_eq!(a.sqlite_synchronous, SqliteSynchronous::Normal);
        assert!(a.json);
        assert!(parse(&["--clients", "0"]).is_err());
        assert!(parse(&["--sqlite-synchronous", "off"]).is_err());
        assert!(parse(&["--duration", "soon"]).is_err());
    }

    #[test]
    fn the_second_configuration_runs_only_when_asked_for_with_both_servers() {
        let pg = Some("postgres://p");
        let nats = Some("nats://n");
        let servers = |p, n| Some((String::from(p), String::from(n)));
        // Not asked for: the test servers in the environment alone do not start it.
        assert_eq!(
            nats_postgres_servers(None, None, false, pg, nats).unwrap(),
            None
        );
        assert_eq!(
            nats_postgres_servers(pg, nats, false, None, None).unwrap(),
            servers("postgres://p", "nats://n")
        );
        // --both takes the environment; explicit flags win.
        assert_eq!(
            nats_postgres_servers(None, None, true, pg, nats).unwrap(),
            servers("postgres://p", "nats://n")
        );
        assert_eq!(
            nats_postgres_servers(Some("postgres://mine"), None, true, pg, nats).unwrap(),
            servers("postgres://mine", "nats://n")
        );
        let err = nats_postgres_servers(None, None, true, None, nats).unwrap_err();
        assert!(err.0.contains("BAZAAR_TEST_POSTGRES_URL"), "{}", err.0);
        let err = nats_postgres_servers(None, None, true, pg, Some("")).unwrap_err();
        assert!(err.0.contains("BAZAAR_TEST_NATS_URL"), "{}", err.0);
        let err = nats_postgres_servers(pg, None, false, None, None).unwrap_err();
        assert!(err.0.contains("--postgres needs --nats"), "{}", err.0);
        let err = nats_postgres_servers(None, nats, false, None, None).unwrap_err();
        assert!(err.0.contains("--nats needs --postgres"), "{}", err.0);
    }
}
