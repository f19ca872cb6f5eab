//! Resolving from fixed addresses or DNS names (Kubernetes headless Services).

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::SocketAddr,
    sync::{Arc, OnceLock},
    time::Duration,
};

use super::{
    feed::{publish, Feed, Publisher},
    ResolveFuture, Resolver,
};
use crate::Instance;

/// How often host names are resolved again (pods come and go behind a headless Service).
pub const DNS_REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// Bound on one DNS lookup; a slow resolver must not stall the refresh of the other names.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// The prefix of the environment variables [`StaticResolver::from_env`] reads.
const ENV_PREFIX: &str = "BAZAAR_SERVICE_";

/// Resolves services from a fixed list of `host:port` addresses per service.
///
/// IP addresses are used as they are. Host names are resolved with the system resolver and
/// again every [`DNS_REFRESH_INTERVAL`], giving one instance per resolved IP; a failed lookup
/// keeps that name's previous addresses. Instances are named by their `ip:port`.
///
/// An address may name the instance's gRPC port too: `host:8080+9090` is HTTP on 8080 and
/// gRPC on 9090 of the same host (a pod serves both).
pub struct StaticResolver {
    services: HashMap<String, Entry>,
}

enum Entry {
    Fixed(Arc<[Instance]>),
    /// Started on first resolve, where a tokio runtime is sure to exist.
    Dns {
        targets: Vec<String>,
        grpc_port: Option<u16>,
        feed: OnceLock<Arc<Feed>>,
    },
}

/// Splits `host:port+grpc_port` into `host:port` and the gRPC port.
fn split_grpc_port(addr: &str) -> (&str, Option<u16>) {
    match addr.rsplit_once('+') {
        Some((base, port)) => match port.parse::<u16>() {
            Ok(p) if p != 0 => (base, Some(p)),
            _ => (addr, None),
        },
        None => (addr, None),
    }
}

impl std::fmt::Debug for StaticResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.services.keys().collect();
        names.sort();
        f.debug_struct("StaticResolver")
            .field("services", &names)
            .finish()
    }
}

impl StaticResolver {
    /// From `service -> ["host:port", ...]`. Entries that are not `host:port` are logged and
    /// skipped.
    pub fn new(map: HashMap<String, Vec<String>>) -> Arc<Self> {
        let mut services = HashMap::new();
        for (service, addrs) in map {
            let mut fixed = Vec::new();
            let mut names = Vec::new();
            let mut grpc_port = None;
            for addr in addrs {
                let (addr, grpc) = split_grpc_port(addr.trim());
                grpc_port = grpc_port.or(grpc);
                match parse_target(addr) {
                    Some(Target::Ip(ip)) => fixed.push(ip),
                    Some(Target::Name) => names.push(addr.to_owned()),
                    None => {
                        tracing::warn!(service = %service, addr = %addr, "Ignoring an address that is not host:port.")
                    }
                }
            }
            let entry = if names.is_empty() {
                Entry::Fixed(Arc::from(instances(&service, fixed, grpc_port)))
            } else {
                // IP entries go through the lookup too: it returns them as they are.
                names.extend(fixed.iter().map(SocketAddr::to_string));
                Entry::Dns {
                    targets: names,
                    grpc_port,
                    feed: OnceLock::new(),
                }
            };
            services.insert(service, entry);
        }
        Arc::new(StaticResolver { services })
    }

    /// From `BAZAAR_SERVICE_<NAME>=host:port,host:port` variables, `<NAME>` being the service
    /// name upper-cased with `-` written as `_` (e.g. `BAZAAR_SERVICE_ORDER_HISTORY` for
    /// `order-history`).
    pub fn from_env() -> Arc<Self> {
        Self::new(map_from_vars(std::env::vars()))
    }

    /// Exactly these instances (tests, or a caller with its own discovery).
    pub fn with_instances(instances: impl IntoIterator<Item = Instance>) -> Arc<Self> {
        let mut by_service: HashMap<String, Vec<Instance>> = HashMap::new();
        for i in instances {
            by_service.entry(i.service.clone()).or_default().push(i);
        }
        let services = by_service
            .into_iter()
            .map(|(s, v)| (s, Entry::Fixed(Arc::from(v))))
            .collect();
        Arc::new(StaticResolver { services })
    }
}

impl Resolver for StaticResolver {
    fn resolve<'a>(&'a self, service: &'a str) -> ResolveFuture<'a> {
        Box::pin(async move {
            match self.services.get(service) {
                None => Arc::from(Vec::new()),
                Some(Entry::Fixed(set)) => Arc::clone(set),
                Some(Entry::Dns {
                    targets,
                    grpc_port,
                    feed,
                }) => {
                    let feed = feed.get_or_init(|| {
                        let (service, targets, grpc) =
                            (service.to_owned(), targets.clone(), *grpc_port);
                        Arc::new(Feed::spawn(move |tx| refresh(service, targets, grpc, tx)))
                    });
                    feed.current().await
                }
            }
        })
    }
}

enum Target {
    Ip(SocketAddr),
    Name,
}

fn parse_target(addr: &str) -> Option<Target> {
    if let Ok(ip) = addr.parse::<SocketAddr>() {
        return Some(Target::Ip(ip));
    }
    let (host, port) = addr.rsplit_once(':')?;
    let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    (port_ok && host_ok).then_some(Target::Name)
}

fn instances(
    service: &str,
    addrs: impl IntoIterator<Item = SocketAddr>,
    grpc_port: Option<u16>,
) -> Vec<Instance> {
    // Sorted and deduplicated by address, like the registry sorts by instance id.
    let by_id: BTreeMap<String, Instance> = addrs
        .into_iter()
        .map(|a| {
            let id = a.to_string();
            let mut instance = Instance::new(service, id.clone(), id.clone());
            instance.grpc_addr = grpc_port.map(|p| SocketAddr::new(a.ip(), p).to_string());
            (id, instance)
        })
        .collect();
    by_id.into_values().collect()
}

fn map_from_vars(vars: impl IntoIterator<Item = (String, String)>) -> HashMap<String, Vec<String>> {
    let mut map = HashMap::new();
    for (key, value) in vars {
        let Some(name) = key.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        let service = name.to_ascii_lowercase().replace('_', "-");
        let addrs: Vec<String> = value
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        map.insert(service, addrs);
    }
    map
}

/// Resolves `targets` now and every [`DNS_REFRESH_INTERVAL`], for as long as the feed lives.
async fn refresh(service: String, targets: Vec<String>, grpc_port: Option<u16>, tx: Publisher) {
    let mut known: HashMap<String, Vec<SocketAddr>> = HashMap::new();
    let mut failing: HashSet<String> = HashSet::new();
    loop {
        for target in &targets {
            match tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host(target.as_str()))
                .await
            {
                Ok(Ok(addrs)) => {
                    if failing.remove(target) {
                        tracing::info!(service = %service, name = %target, "Name resolves again.");
                    }
                    known.insert(target.clone(), addrs.collect());
                }
                Ok(Err(err)) => {
                    if failing.insert(target.clone()) {
                        tracing::warn!(service = %service, name = %target, error = %err, "Cannot resolve; keeping its last addresses.");
                    }
                }
                Err(_) => {
                    if failing.insert(target.clone()) {
                        tracing::warn!(service = %service, name = %target, "Resolving timed out; keeping its last addresses.");
                    }
                }
            }
        }
        publish(
            &tx,
            instances(&service, known.values().flatten().copied(), grpc_port),
        );
        tokio::time::sleep(DNS_REFRESH_INTERVAL).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn an_address_may_carry_a_grpc_port() {
        assert_eq!(
            split_grpc_port("10.0.0.1:8080+9090"),
            ("10.0.0.1:8080", Some(9090))
        );
        assert_eq!(split_grpc_port("inventory:8080"), ("inventory:8080", None));
        assert_eq!(
            split_grpc_port("inventory:8080+x"),
            ("inventory:8080+x", None)
        );
        let r = StaticResolver::new(
            [(
                "inventory".to_owned(),
                vec!["127.0.0.1:8080+9090".to_owned()],
            )]
            .into_iter()
            .collect(),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let set = rt.block_on(r.resolve("inventory"));
        assert_eq!(set[0].http_addr, "127.0.0.1:8080");
        assert_eq!(set[0].grpc_addr.as_deref(), Some("127.0.0.1:9090"));
    }

    #[test]
    fn env_names_become_service_names() {
        let map = map_from_vars(vars(&[
            ("BAZAAR_SERVICE_IDENTITY", "127.0.0.1:1, 127.0.0.1:2,"),
            ("BAZAAR_SERVICE_ORDER_HISTORY", "history:80"),
            ("BAZAAR_SERVICE_", "x:1"),
            ("BAZAAR_REGISTRY_URL", "http://127.0.0.1:8090"),
        ]));
        assert_eq!(map.len(), 2);
        assert_eq!(map["identity"], vec!["127.0.0.1:1", "127.0.0.1:2"]);
        assert_eq!(map["order-history"], vec!["history:80"]);
    }

    #[test]
    fn targets_must_be_host_and_port() {
        assert!(matches!(parse_target("127.0.0.1:80"), Some(Target::Ip(_))));
        assert!(matches!(parse_target("[::1]:80"), Some(Target::Ip(_))));
        assert!(matches!(
            parse_target("identity.bazaar.svc:80"),
            Some(Target::Name)
        ));
        for bad in [
            "",
            "identity",
            "identity:",
            ":80",
            "identity:0",
            "identity:99999",
            "a b:80",
            "http://x:80",
        ] {
            assert!(parse_target(bad).is_none(), "{bad}");
        }
    }

    #[tokio::test]
    async fn an_unknown_service_has_no_instances() {
        let r = StaticResolver::new(HashMap::new());
        assert!(r.resolve("nope").await.is_empty());
    }
}
