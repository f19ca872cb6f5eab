//! The route table: which upstream service serves a path, and the edge policy for it.
//!
//! A route is chosen by the longest prefix that matches whole path segments, so
//! `/api/v1/products` serves `/api/v1/products` and `/api/v1/products/123` but not
//! `/api/v1/productsx`. [`RouteTable::default`] is the table of the public contract; a TOML
//! file (see `routes.example.toml`) replaces it wholesale, so what runs is always exactly
//! what one file or this module says.

use std::{borrow::Cow, cell::Cell, collections::HashSet, sync::Arc, time::Duration};

use http::Method;

use crate::ratelimit::Rate;

mod config;

pub use config::RouteTableError;

/// Per-route upstream timeout unless the route says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The upstream timeout of `/api/v1/orders`: `Prefer: wait` may hold a placement for up to
/// 30 s, plus time for the order service to answer after that.
pub const ORDERS_TIMEOUT: Duration = Duration::from_secs(35);
/// Per-route request body limit unless the route says otherwise (64 KiB, as the contract says).
pub const DEFAULT_BODY_LIMIT: u64 = 64 * 1024;
/// The largest body limit a route may set; the gateway streams bodies, but a limit this high
/// already means the route is not an API call any more.
pub const MAX_BODY_LIMIT: u64 = 64 * 1024 * 1024;
/// The longest upstream timeout a route may set.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// The longest response cache TTL a route may set; the cache is for absorbing bursts, not for
/// serving stale catalogues.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(3600);

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthPolicy {
    /// A token is optional, but one that is present must be valid (401 otherwise).
    #[default]
    Public,
    /// A valid token is required (401 `WWW-Authenticate: Bearer` without one).
    Required,
    /// A valid token with the `admin` role is required (403 without the role).
    Admin,
}

/// Whose bucket a route-specific rate limit draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateKeyKind {
    /// The user when the request carries a valid token, else the client IP (like the defaults).
    #[default]
    Caller,
    /// Always the client IP: for routes like login, where a pile of tokens must not buy a
    /// pile of buckets.
    Ip,
}

/// A route-specific rate limit, replacing the user/anonymous defaults on that route.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RouteRateLimit {
    /// The rate and burst.
    pub rate: Rate,
    /// Whose bucket is charged.
    pub key: RateKeyKind,
}

/// One upstream service of a route, with its share of the traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The service name the resolver knows it by.
    pub service: Arc<str>,
    /// Relative weight (canary splits); irrelevant when the route has one upstream.
    pub weight: u32,
}

/// One entry of the route table.
///
/// Extension point: routing on something other than the path (`/api/v1/admin/dead-letters`
/// chooses its service from `?service=`) and composed endpoints (`/api/v1/me/overview`) are
/// not entries of this table; they are handlers in [`crate::router`] ([`crate::ops`],
/// [`crate::overview`]), which win over the proxy because exact routes take priority over its
/// catch-all, and which apply the same edge policy through routes of their own.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The path prefix, matched on whole segments (`/api/v1/products`).
    pub prefix: String,
    /// Where requests go: one service, or several with weights (canary).
    pub upstreams: Vec<Upstream>,
    /// Replaces the prefix in the forwarded path (`/api/v1/admin/sagas` → `/admin/sagas`).
    pub rewrite: Option<String>,
    /// Time allowed until the upstream's response head arrives (504 after).
    pub timeout: Duration,
    /// Who may call.
    pub auth: AuthPolicy,
    /// Overrides the user/anonymous default limits.
    pub rate_limit: Option<RouteRateLimit>,
    /// Largest request body accepted, in bytes (413 beyond).
    pub body_limit: u64,
    /// How long anonymous `GET` 200 responses are cached; zero turns the cache off.
    pub cache_ttl: Duration,
    /// The methods allowed (405 for others); `None` allows every method.
    pub methods: Option<Vec<Method>>,
}

impl Route {
    /// A public route to `service` with every other setting at its default.
    pub fn new(prefix: impl Into<String>, service: &str) -> Route {
        Route {
            prefix: prefix.into(),
            upstreams: vec![Upstream {
                service: Arc::from(service),
                weight: 1,
            }],
            rewrite: None,
            timeout: DEFAULT_TIMEOUT,
            auth: AuthPolicy::Public,
            rate_limit: None,
            body_limit: DEFAULT_BODY_LIMIT,
            cache_ttl: Duration::ZERO,
            methods: None,
        }
    }

    /// Sets who may call.
    #[must_use]
    pub fn auth(mut self, auth: AuthPolicy) -> Route {
        self.auth = auth;
        self
    }

    /// Replaces the prefix with `rewrite` when forwarding.
    #[must_use]
    pub fn rewrite(mut self, rewrite: impl Into<String>) -> Route {
        self.rewrite = Some(rewrite.into());
        self
    }

    /// Sets the upstream timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Route {
        self.timeout = timeout;
        self
    }

    /// Sets a route-specific rate limit.
    #[must_use]
    pub fn rate_limit(mut self, rate: Rate, key: RateKeyKind) -> Route {
        self.rate_limit = Some(RouteRateLimit { rate, key });
        self
    }

    /// Sets the body limit in bytes.
    #[must_use]
    pub fn body_limit(mut self, bytes: u64) -> Route {
        self.body_limit = bytes;
        self
    }

    /// Caches anonymous `GET` 200 responses for `ttl`.
    #[must_use]
    pub fn cache_ttl(mut self, ttl: Duration) -> Route {
        self.cache_ttl = ttl;
        self
    }

    /// Allows only `methods`.
    #[must_use]
    pub fn methods(mut self, methods: Vec<Method>) -> Route {
        self.methods = Some(methods);
        self
    }

    /// Splits traffic between several services by weight (canary).
    #[must_use]
    pub fn upstreams(mut self, upstreams: Vec<Upstream>) -> Route {
        self.upstreams = upstreams;
        self
    }

    /// Whether this route serves `path` (whole segments only).
    pub fn matches(&self, path: &str) -> bool {
        prefix_matches(&self.prefix, path)
    }

    /// The path to forward for `path` (which this route matches): the prefix replaced by the
    /// rewrite, if any.
    pub fn upstream_path<'a>(&self, path: &'a str) -> Cow<'a, str> {
        let Some(rewrite) = &self.rewrite else {
            return Cow::Borrowed(path);
        };
        // The rest is empty or starts with '/', because the prefix matched whole segments.
        let rest = if self.prefix == "/" {
            path.strip_prefix('/').map_or("", |_| path)
        } else {
            &path[self.prefix.len().min(path.len())..]
        };
        let rest = if self.prefix == "/" && rest == "/" {
            ""
        } else {
            rest
        };
        if rest.is_empty() {
            Cow::Owned(rewrite.clone())
        } else if rewrite == "/" {
            Cow::Owned(rest.to_owned())
        } else {
            let mut out = String::with_capacity(rewrite.len() + rest.len());
            out.push_str(rewrite);
            out.push_str(rest);
            Cow::Owned(out)
        }
    }

    /// Whether `method` is allowed.
    pub fn allows(&self, method: &Method) -> bool {
        self.methods.as_ref().is_none_or(|m| m.contains(method))
    }

    /// The upstream for one request: the only one, or a weighted random choice (canary).
    pub fn choose_upstream(&self) -> Option<&Upstream> {
        if self.upstreams.len() <= 1 {
            return self.upstreams.first();
        }
        let total: u64 = self.upstreams.iter().map(|u| u64::from(u.weight)).sum();
        if total == 0 {
            return self.upstreams.first();
        }
        let mut roll = random_u64() % total;
        for u in &self.upstreams {
            let w = u64::from(u.weight);
            if roll < w {
                return Some(u);
            }
            roll -= w;
        }
        self.upstreams.last()
    }

    fn validate(&self) -> Result<(), String> {
        check_path("prefix", &self.prefix)?;
        if let Some(rewrite) = &self.rewrite {
            check_path("rewrite", rewrite)?;
        }
        if self.upstreams.is_empty() {
            return Err("needs `service` or a non-empty `upstreams` list".to_owned());
        }
        for u in &self.upstreams {
            if u.service.is_empty()
                || !u
                    .service
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(format!(
                    "service name `{}` must be non-empty and use only letters, digits, '-', '_' and '.'",
                    u.service
                ));
            }
            if self.upstreams.len() > 1 && u.weight == 0 {
                return Err(format!(
                    "upstream `{}` needs a weight of at least 1",
                    u.service
                ));
            }
        }
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return Err(format!(
                "`timeout_ms` must be between 1 and {} (got {})",
                MAX_TIMEOUT.as_millis(),
                self.timeout.as_millis()
            ));
        }
        if self.body_limit > MAX_BODY_LIMIT {
            return Err(format!(
                "`body_limit` must be at most {MAX_BODY_LIMIT} bytes (got {})",
                self.body_limit
            ));
        }
        if self.cache_ttl > MAX_CACHE_TTL {
            return Err(format!(
                "`cache_ttl_ms` must be at most {} (got {})",
                MAX_CACHE_TTL.as_millis(),
                self.cache_ttl.as_millis()
            ));
        }
        if let Some(limit) = &self.rate_limit {
            Rate::new(limit.rate.per_second, limit.rate.burst)
                .map_err(|e| format!("`rate_limit`: {e}"))?;
        }
        if self.methods.as_ref().is_some_and(Vec::is_empty) {
            return Err(
                "`methods` must list at least one method (leave it out to allow all)".to_owned(),
            );
        }
        Ok(())
    }
}

/// The routes of the gateway, tried longest prefix first.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteTable {
    /// Sorted by prefix length, longest first, so the first match is the most specific.
    routes: Vec<Route>,
}

impl RouteTable {
    /// A table of `routes`, checked: paths well-formed, no duplicate prefix, settings in range.
    pub fn new(routes: Vec<Route>) -> Result<RouteTable, RouteTableError> {
        if routes.is_empty() {
            return Err(RouteTableError::invalid(
                None,
                "the route table has no routes",
            ));
        }
        let mut seen = HashSet::new();
        for (i, route) in routes.iter().enumerate() {
            route
                .validate()
                .map_err(|msg| RouteTableError::route(None, i, &route.prefix, msg))?;
            if !seen.insert(route.prefix.as_str()) {
                return Err(RouteTableError::route(
                    None,
                    i,
                    &route.prefix,
                    "this prefix is already routed".to_owned(),
                ));
            }
        }
        let mut routes = routes;
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Ok(RouteTable { routes })
    }

    /// Parses a table from TOML (the format of `routes.example.toml`).
    pub fn from_toml_str(text: &str) -> Result<RouteTable, RouteTableError> {
        config::parse(text, None)
    }

    /// Reads and parses a TOML route table file; errors name the file.
    pub fn from_toml_file(
        path: impl AsRef<std::path::Path>,
    ) -> Result<RouteTable, RouteTableError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| RouteTableError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        config::parse(&text, Some(path))
    }

    /// The route serving `path`: the longest prefix matching whole segments.
    pub fn find(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(path))
    }

    /// Every route, longest prefix first.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Every service any route sends to (each once).
    pub fn services(&self) -> Vec<Arc<str>> {
        let mut out: Vec<Arc<str>> = Vec::new();
        for u in self.routes.iter().flat_map(|r| &r.upstreams) {
            if !out.contains(&u.service) {
                out.push(u.service.clone());
            }
        }
        out
    }
}

impl Default for RouteTable {
    /// The public contract's routes (API.md).
    fn default() -> RouteTable {
        let login_rate = Rate {
            per_second: 10.0,
            burst: 20,
        };
        let routes = vec![
            // Identity enforces auth on /users/me itself; registration is public.
            Route::new("/api/v1/users", "identity"),
            // Per IP, whatever token comes along: this is where passwords are guessed.
            Route::new("/api/v1/auth", "identity").rate_limit(login_rate, RateKeyKind::Ip),
            Route::new("/.well-known/jwks.json", "identity").cache_ttl(Duration::from_secs(60)),
            Route::new("/api/v1/products", "catalog").cache_ttl(Duration::from_millis(2000)),
            Route::new("/api/v1/inventory", "inventory").auth(AuthPolicy::Admin),
            // `Prefer: wait=N` holds a placement open for up to 30 s: the timeout leaves room.
            Route::new("/api/v1/orders", "order")
                .auth(AuthPolicy::Required)
                .timeout(ORDERS_TIMEOUT),
            Route::new("/api/v1/me/notifications", "notification").auth(AuthPolicy::Required),
            Route::new("/api/v1/admin/sagas", "order")
                .rewrite("/admin/sagas")
                .auth(AuthPolicy::Admin),
            // Payment and shipping serve these public paths themselves.
            Route::new("/api/v1/admin/payments", "payment").auth(AuthPolicy::Admin),
            Route::new("/api/v1/admin/shipments", "shipping").auth(AuthPolicy::Admin),
        ];
        RouteTable::new(routes).unwrap_or_else(|_| RouteTable { routes: Vec::new() })
    }
}

/// Whether `prefix` matches `path` on whole segments.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return path.starts_with('/');
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// A path in a route (prefix or rewrite): absolute, no empty or dot segments, no trailing
/// slash, only characters a path segment may hold without escaping.
fn check_path(field: &str, path: &str) -> Result<(), String> {
    if path == "/" {
        return Ok(());
    }
    if !path.starts_with('/') {
        return Err(format!("`{field}` must start with '/' (got `{path}`)"));
    }
    if path.ends_with('/') {
        return Err(format!("`{field}` must not end with '/' (got `{path}`)"));
    }
    for segment in path[1..].split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(format!(
                "`{field}` must not contain empty, '.' or '..' segments (got `{path}`)"
            ));
        }
        if let Some(c) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@%".contains(*c)))
        {
            return Err(format!(
                "`{field}` contains `{c}`, which a path segment cannot hold (got `{path}`)"
            ));
        }
    }
    Ok(())
}

/// A fast, non-cryptographic random number for canary splits (xorshift64*, one state per
/// thread, seeded from the std hasher's per-process random keys). No lock, no syscall.
fn random_u64() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            use std::hash::{BuildHasher, Hasher};
            // Each RandomState gets fresh keys, so every thread starts somewhere else.
            std::collections::hash_map::RandomState::new().build_hasher().finish() | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_whole_segments_only() {
        assert!(prefix_matches("/api/v1/products", "/api/v1/products"));
        assert!(prefix_matches("/api/v1/products", "/api/v1/products/123"));
        assert!(prefix_matches("/api/v1/products", "/api/v1/products/"));
        assert!(!prefix_matches("/api/v1/products", "/api/v1/productsx"));
        assert!(!prefix_matches("/api/v1/products", "/api/v1/product"));
        assert!(prefix_matches("/", "/anything"));
    }

    #[test]
    fn the_longest_matching_prefix_wins() {
        let table = RouteTable::new(vec![
            Route::new("/api", "a"),
            Route::new("/api/v1/products", "b"),
            Route::new("/api/v1", "c"),
        ])
        .unwrap();
        assert_eq!(
            &*table.find("/api/v1/products/9").unwrap().upstreams[0].service,
            "b"
        );
        assert_eq!(
            &*table.find("/api/v1/productsx").unwrap().upstreams[0].service,
            "c"
        );
        assert_eq!(&*table.find("/api/v2").unwrap().upstreams[0].service, "a");
        assert!(table.find("/apix").is_none());
    }

    #[test]
    fn rewrite_replaces_the_prefix() {
        let r = Route::new("/api/v1/admin/sagas", "order").rewrite("/admin/sagas");
        assert_eq!(r.upstream_path("/api/v1/admin/sagas"), "/admin/sagas");
        assert_eq!(
            r.upstream_path("/api/v1/admin/sagas/7/retry"),
            "/admin/sagas/7/retry"
        );
        let r = Route::new("/api/v1/legacy", "old").rewrite("/");
        assert_eq!(r.upstream_path("/api/v1/legacy"), "/");
        assert_eq!(r.upstream_path("/api/v1/legacy/x"), "/x");
        let r = Route::new("/", "all").rewrite("/v2");
        assert_eq!(r.upstream_path("/x/y"), "/v2/x/y");
        assert_eq!(r.upstream_path("/"), "/v2");
        let r = Route::new("/api", "same");
        assert_eq!(r.upstream_path("/api/x"), "/api/x");
    }

    #[test]
    fn the_default_table_routes_the_contract() {
        let t = RouteTable::default();
        assert_eq!(t.routes().len(), 10);
        // (path, service, auth, forwarded path) for every contract route.
        let cases = [
            (
                "/api/v1/users/me",
                "identity",
                AuthPolicy::Public,
                "/api/v1/users/me",
            ),
            (
                "/api/v1/auth/token",
                "identity",
                AuthPolicy::Public,
                "/api/v1/auth/token",
            ),
            (
                "/.well-known/jwks.json",
                "identity",
                AuthPolicy::Public,
                "/.well-known/jwks.json",
            ),
            (
                "/api/v1/products/1",
                "catalog",
                AuthPolicy::Public,
                "/api/v1/products/1",
            ),
            (
                "/api/v1/inventory/SKU-1/restock",
                "inventory",
                AuthPolicy::Admin,
                "/api/v1/inventory/SKU-1/restock",
            ),
            (
                "/api/v1/orders/1/cancel",
                "order",
                AuthPolicy::Required,
                "/api/v1/orders/1/cancel",
            ),
            (
                "/api/v1/me/notifications/1/read",
                "notification",
                AuthPolicy::Required,
                "/api/v1/me/notifications/1/read",
            ),
            (
                "/api/v1/admin/sagas/1/abort",
                "order",
                AuthPolicy::Admin,
                "/admin/sagas/1/abort",
            ),
            (
                "/api/v1/admin/payments",
                "payment",
                AuthPolicy::Admin,
                "/api/v1/admin/payments",
            ),
            (
                "/api/v1/admin/shipments",
                "shipping",
                AuthPolicy::Admin,
                "/api/v1/admin/shipments",
            ),
        ];
        for (path, service, auth, upstream) in cases {
            let r = t
                .find(path)
                .unwrap_or_else(|| panic!("{path} is not routed"));
            assert_eq!(&*r.upstreams[0].service, service, "{path}");
            assert_eq!(r.auth, auth, "{path}");
            assert_eq!(r.upstream_path(path), upstream, "{path}");
            assert_eq!(r.body_limit, DEFAULT_BODY_LIMIT, "{path}");
        }
        // `Prefer: wait=30` must not be cut off by the gateway.
        assert!(t.find("/api/v1/orders").unwrap().timeout >= Duration::from_secs(35));
        // Nothing reaches the payment provider or a service's internal endpoints.
        assert!(!t.services().iter().any(|s| &**s == "psp"));
        for r in t.routes() {
            assert!(!r.prefix.starts_with("/internal"), "{}", r.prefix);
            assert!(
                !r.rewrite
                    .as_deref()
                    .is_some_and(|w| w.starts_with("/internal")),
                "{}",
                r.prefix
            );
        }
        for path in [
            "/internal/events",
            "/api/v1/me/overview",
            "/api/v1/admin/dead-letters",
        ] {
            assert!(t.find(path).is_none(), "{path} must not be a proxied route");
        }
        let r = t.find("/api/v1/admin/sagas/1/retry").unwrap();
        assert_eq!(r.auth, AuthPolicy::Admin);
        assert_eq!(
            r.upstream_path("/api/v1/admin/sagas/1/retry"),
            "/admin/sagas/1/retry"
        );
        assert_eq!(
            t.find("/api/v1/products").unwrap().cache_ttl,
            Duration::from_secs(2)
        );
        assert_eq!(
            t.find("/api/v1/auth/token")
                .unwrap()
                .rate_limit
                .unwrap()
                .key,
            RateKeyKind::Ip
        );
        assert!(t.find("/api/v1/unknown").is_none());
    }

    #[test]
    fn refuses_bad_prefixes_and_duplicates() {
        for bad in [
            "api",
            "/api/",
            "/api//x",
            "/api/../x",
            "/api/{id}",
            "/a b",
            "",
        ] {
            assert!(
                RouteTable::new(vec![Route::new(bad, "svc")]).is_err(),
                "{bad}"
            );
        }
        let dup = RouteTable::new(vec![Route::new("/a", "x"), Route::new("/a", "y")]).unwrap_err();
        assert!(dup.to_string().contains("already routed"), "{dup}");
    }

    #[test]
    fn weighted_upstreams_split_roughly_by_weight() {
        let r = Route::new("/x", "a").upstreams(vec![
            Upstream {
                service: "a".into(),
                weight: 9,
            },
            Upstream {
                service: "b".into(),
                weight: 1,
            },
        ]);
        let b = (0..10_000)
            .filter(|_| &*r.choose_upstream().unwrap().service == "b")
            .count();
        assert!((500..1500).contains(&b), "{b}");
    }

    fn segment() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,4}"
    }

    proptest! {
        #[test]
        fn a_prefix_matches_exactly_its_own_subtree(
            prefix in proptest::collection::vec(segment(), 1..4),
            path in proptest::collection::vec(segment(), 0..6),
        ) {
            let prefix_s = format!("/{}", prefix.join("/"));
            let path_s = format!("/{}", path.join("/"));
            let expected = path.len() >= prefix.len() && path[..prefix.len()] == prefix[..];
            prop_assert_eq!(prefix_matches(&prefix_s, &path_s), expected);
        }

        #[test]
        fn find_returns_the_longest_matching_route(
            prefixes in proptest::collection::hash_set(proptest::collection::vec("[ab]", 1..4), 1..8),
            path in proptest::collection::vec("[ab]", 0..5),
        ) {
            let routes: Vec<Route> = prefixes.iter().map(|p| Route::new(format!("/{}", p.join("/")), "s")).collect();
            let table = RouteTable::new(routes.clone()).unwrap();
            let path_s = format!("/{}", path.join("/"));
            let best = routes.iter().filter(|r| r.matches(&path_s)).max_by_key(|r| r.prefix.len());
            prop_assert_eq!(table.find(&path_s).map(|r| &r.prefix), best.map(|r| &r.prefix));
        }

        #[test]
        fn matching_never_panics(prefix in "/[a-z/]{0,8}", path in "\\PC{0,16}") {
            let _ = prefix_matches(&prefix, &path);
            let r = Route::new(prefix, "s").rewrite("/r");
            if r.matches(&path) {
                let _ = r.upstream_path(&path);
            }
        }
    }
}
