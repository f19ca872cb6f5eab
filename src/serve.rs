//! `bazaar serve <service>`: build one service from flags and environment, register it with
//! the registry, serve until SIGTERM / Ctrl-C, deregister, drain.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use bazaar_discovery::{
    Instance, Registration, RegistryClient, RegistryResolver, Resolver, StaticResolver,
};
use bazaar_runtime::{telemetry, App};

use crate::cli::{CommonArgs, ServeArgs, ServiceName, UsageError};

/// Everything needed to build one service, already validated.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub service: ServiceName,
    pub common: CommonArgs,
    pub addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    pub advertise_addr: Option<String>,
    pub instance_id: String,
    pub seed_demo: bool,
    pub static_discovery: bool,
    pub admin_password: Option<String>,
}

impl ServiceConfig {
    pub fn from_args(args: ServeArgs) -> Result<Self, UsageError> {
        let addr = match (args.addr, args.service) {
            (Some(a), _) => a,
            (None, ServiceName::Gateway) => args.common.gateway_addr,
            (None, ServiceName::Registry) => registry_addr(&args.common.registry_url)?,
            (None, _) => SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let instance_id = args.instance_id.unwrap_or_else(|| {
            format!(
                "{}-{}",
                args.service.as_str(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            )
        });
        if !bazaar_runtime::context::is_valid_request_id(&instance_id) {
            return Err(UsageError(format!(
                "--instance-id `{instance_id}` must be 1-128 of [A-Za-z0-9._-]"
            )));
        }
        Ok(Self {
            service: args.service,
            common: args.common,
            addr,
            grpc_addr: args
                .grpc_addr
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
            advertise_addr: args.advertise_addr,
            instance_id,
            seed_demo: args.seed_demo,
            static_discovery: args.static_discovery,
            admin_password: std::env::var("BAZAAR_ADMIN_PASSWORD")
                .ok()
                .filter(|p| !p.is_empty()),
        })
    }
}

/// The `host:port` the registry listens on, from its URL.
pub fn registry_addr(url: &str) -> Result<SocketAddr, UsageError> {
    let parsed = url::Url::parse(url)
        .map_err(|e| UsageError(format!("BAZAAR_REGISTRY_URL `{url}`: {e}")))?;
    let host = parsed.host_str().unwrap_or("127.0.0.1");
    let port = parsed.port_or_known_default().unwrap_or(8090);
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    format!("{host}:{port}").parse().map_err(|_| {
        UsageError(format!(
            "BAZAAR_REGISTRY_URL `{url}` must name an IP address and port"
        ))
    })
}

/// A built service, bound and ready to run, and how to announce it.
pub struct Built {
    pub app: App,
    pub instance: Instance,
    pub registry: Option<RegistryClient>,
}

/// Builds the service `cfg` names.
pub async fn build(cfg: &ServiceConfig) -> anyhow::Result<Built> {
    let common = &cfg.common;
    let resolver: Arc<dyn Resolver> = if cfg.static_discovery {
        StaticResolver::from_env()
    } else {
        RegistryResolver::new(RegistryClient::new(&common.registry_url))
    };
    let jwks = || {
        Arc::new(bazaar_auth::Verifier::new(bazaar_discovery::jwks_source(
            resolver.clone(),
            reqwest::Client::new(),
        )))
    };
    let bus = || -> Result<bazaar_messaging::BusConfig, UsageError> {
        if let Some(ns) = &common.bus_namespace {
            if !ns.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') || ns.len() > 32 {
                return Err(UsageError(format!(
                    "BAZAAR_BUS_NAMESPACE `{ns}` must be 1-32 of [A-Za-z0-9-]"
                )));
            }
        }
        let mut config = bazaar_messaging::BusConfig::with_url(common.bus_url()?);
        config.namespace = common.bus_namespace.clone().filter(|n| !n.is_empty());
        config.retry.max_attempts = common.bus_max_attempts;
        config.retry.base = common.bus_retry_base;
        config.ack_wait = common.bus_ack_wait;
        config.instance = cfg.instance_id.clone();
        Ok(config)
    };
    let app = match cfg.service {
        ServiceName::Registry => {
            bazaar_registry::build(bazaar_registry::Settings {
                addr: cfg.addr,
                lease_ttl: common.lease_ttl,
            })
            .await?
        }
        ServiceName::Identity => {
            bazaar_identity::build(bazaar_identity::Settings {
                addr: cfg.addr,
                data_dir: common.data_dir.clone(),
                database_url: common.database_url.clone(),
                admin_password: cfg.admin_password.clone(),
                bus: bus()?,
                resolver: resolver.clone(),
            })
            .await?
        }
        ServiceName::Catalog => {
            bazaar_catalog::build(bazaar_catalog::Settings {
                addr: cfg.addr,
                data_dir: common.data_dir.clone(),
                database_url: common.database_url.clone(),
                seed_demo: cfg.seed_demo,
                verifier: jwks(),
                grpc_addr: cfg.grpc_addr,
                resolver: resolver.clone(),
                bus: bus()?,
            })
            .await?
        }
        ServiceName::Inventory => {
            bazaar_inventory::build(bazaar_inventory::Settings {
                addr: cfg.addr,
                grpc_addr: cfg.grpc_addr,
                data_dir: common.data_dir.clone(),
                database_url: common.database_url.clone(),
                seed_demo: cfg.seed_demo,
                verifier: jwks(),
                resolver: resolver.clone(),
                bus: bus()?,
            })
            .await?
        }
        ServiceName::Psp => {
            bazaar_psp::build(bazaar_psp::Settings {
                addr: cfg.addr,
                data_dir: common.data_dir.clone(),
                database_url: common.database_url.clone(),
                verifier: jwks(),
                timeout_token_delay: bazaar_psp::DEFAULT_TIMEOUT_TOKEN_DELAY,
            })
            .await?
        }
        ServiceName::Payment => {
            bazaar_payment::build(bazaar_payment::Settings {
                addr: cfg.addr,
                grpc_addr: cfg.grpc_addr,
                data_dir: common.data_dir.clone(),
                database_url: common.database_url.clone(),
                verifier: jwks(),
                resolver: resolver.clone(),
                bus: bus()?,
                psp_url: common.psp_url.clone(),
                psp_timeout: common.payment_timeout,
                breaker: bazaar_resilience::BreakerConfig::default(),
            })
            .await?
        }
        ServiceName::Order => {
            bazaar_order::build(bazaar_order::Settings {
                addr: cfg.addr,
                grpc_addr: cfg.grpc_addr,
                data_dir: common.data_dir.clone(),
                database_url: common.database_url.clone(),
                verifier: jwks(),
                resolver: resolver.clone(),
                bus: bus()?,
                payment_pending_deadline: common.payment_pending_deadline,
                saga: bazaar_order::SagaConfig::default(),
                instance_id: cfg.instance_id.clone(),
            })
            .await?
        }
        ServiceName::Shipping => {
            bazaar_shipping::build(bazaar_shipping::Settings {
                addr: cfg.addr,
                data_dir: common.data_dir.clone(),
                database_url: common.database_url.clone(),
                verifier: jwks(),
                resolver: resolver.clone(),
                bus: bus()?,
                handling_time: common.handling_time,
                instance_id: cfg.instance_id.clone(),
            })
            .await?
        }
        ServiceName::Notification => {
            bazaar_notification::build(bazaar_notification::Settings {
                addr: cfg.addr,
                data_dir: common.data_dir.clone(),
                database_url: common.database_url.clone(),
                verifier: jwks(),
                resolver: resolver.clone(),
                bus: bus()?,
            })
            .await?
        }
        ServiceName::Gateway => {
            let routes = match &common.gateway_routes {
                Some(path) => bazaar_gateway::RouteTable::from_toml_file(path).map_err(|e| {
                    UsageError(format!("--gateway-routes {}: {e:#}", path.display()))
                })?,
                None => bazaar_gateway::RouteTable::default(),
            };
            let rate_limits = bazaar_gateway::RateLimits {
                user: bazaar_gateway::Rate::parse(&common.rate_limit_user)
                    .map_err(|e| UsageError(format!("BAZAAR_RATE_LIMIT_USER: {e}")))?,
                anon: bazaar_gateway::Rate::parse(&common.rate_limit_anon)
                    .map_err(|e| UsageError(format!("BAZAAR_RATE_LIMIT_ANON: {e}")))?,
            };
            bazaar_gateway::build(bazaar_gateway::Settings {
                addr: cfg.addr,
                resolver: resolver.clone(),
                verifier: jwks(),
                routes,
                rate_limits,
            })
            .await?
        }
    };
    let bound = app.local_addr();
    let http_addr = cfg
        .advertise_addr
        .clone()
        .unwrap_or_else(|| advertised(bound));
    let grpc_addr = app.grpc_addr().map(|bound| match &cfg.advertise_addr {
        // Advertised as the same host as the HTTP port, with the gRPC port.
        Some(a) => match a.rsplit_once(':') {
            Some((host, _)) => format!("{host}:{}", bound.port()),
            None => format!("{a}:{}", bound.port()),
        },
        None => advertised(bound),
    });
    let instance = Instance {
        service: cfg.service.as_str().to_owned(),
        instance_id: cfg.instance_id.clone(),
        http_addr,
        grpc_addr,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        metadata: [("pid".to_owned(), std::process::id().to_string())]
            .into_iter()
            .collect(),
    };
    // The registry does not register with itself; static discovery has no registry at all.
    let registry = (cfg.service != ServiceName::Registry && !cfg.static_discovery)
        .then(|| RegistryClient::new(&common.registry_url));
    Ok(Built {
        app,
        instance,
        registry,
    })
}

/// An unspecified bind address (0.0.0.0) is not reachable as such: advertise loopback.
fn advertised(bound: SocketAddr) -> String {
    if bound.ip().is_unspecified() {
        format!("127.0.0.1:{}", bound.port())
    } else {
        bound.to_string()
    }
}

/// Runs a built service until `stop` resolves: registers, serves, deregisters, drains.
pub async fn run_built(
    built: Built,
    stop: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let Built {
        app,
        instance,
        registry,
    } = built;
    let registration = match registry {
        Some(client) => Some(Registration::start(client, instance.clone()).await),
        None => None,
    };
    tracing::info!(service = %instance.service, instance_id = %instance.instance_id, addr = %instance.http_addr, "Service started.");
    let shutdown = async move {
        stop.await;
        tracing::info!("Shutting down: deregistering, then draining.");
        // Leave the registry first so nobody routes new work here while we drain.
        if let Some(r) = registration {
            r.stop().await;
        }
    };
    app.run_until_stopped(shutdown).await
}

/// Resolves when the supervising process (if any) is gone, so orphans do not linger.
pub async fn supervisor_gone() {
    let Some(pid) = std::env::var("BAZAAR_SUPERVISOR_PID")
        .ok()
        .and_then(|p| p.parse::<i32>().ok())
    else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if nix::unistd::getppid().as_raw() != pid {
            tracing::warn!(supervisor_pid = pid, "The supervisor is gone; stopping.");
            return;
        }
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    telemetry::init(telemetry::LogFormat::from_env());
    let cfg = ServiceConfig::from_args(args)?;
    // Panics that do not end the process (a handler's, a task's) still leave a record for
    // `bazaar check`.
    bazaar_runtime::panics::install(cfg.common.data_dir.join("panics"), &cfg.instance_id);
    let built = build(&cfg).await?;
    // One line on stdout for whoever started us (the supervisor reads it).
    println!(
        "bazaar-serve: {} listening on {}",
        cfg.service.as_str(),
        built.instance.http_addr
    );
    run_built(built, async {
        tokio::select! {
            () = bazaar_runtime::shutdown::signal() => {}
            () = supervisor_gone() => {}
        }
    })
    .await
}
