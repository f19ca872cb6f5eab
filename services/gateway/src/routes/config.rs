//! The TOML form of the route table and its error messages.
//!
//! Unknown keys are refused (`deny_unknown_fields`): a misspelt `cache_ttl` silently doing
//! nothing is exactly the kind of mistake a config file must not allow.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use http::Method;
use serde::Deserialize;

use super::{
    AuthPolicy, RateKeyKind, Route, RouteRateLimit, RouteTable, Upstream, DEFAULT_BODY_LIMIT,
    DEFAULT_TIMEOUT,
};
use crate::ratelimit::Rate;

/// Why a route table could not be loaded; the message names the file and the route.
#[derive(Debug, thiserror::Error)]
pub enum RouteTableError {
    /// The file could not be read.
    #[error("cannot read route table {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not TOML of the expected shape.
    #[error("{}: {message}", origin(path.as_deref()))]
    Parse {
        /// The file, if the table came from one.
        path: Option<PathBuf>,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A route breaks a rule.
    #[error("{}: route {number} (prefix `{prefix}`): {message}", origin(path.as_deref()))]
    Route {
        /// The file, if the table came from one.
        path: Option<PathBuf>,
        /// The route's position in the table, counting from 1.
        number: usize,
        /// Its prefix.
        prefix: String,
        /// What is wrong.
        message: String,
    },
    /// The table as a whole is unusable.
    #[error("{}: {message}", origin(path.as_deref()))]
    Invalid {
        /// The file, if the table came from one.
        path: Option<PathBuf>,
        /// What is wrong.
        message: String,
    },
}

fn origin(path: Option<&Path>) -> String {
    path.map_or_else(
        || "route table".to_owned(),
        |p| format!("route table {}", p.display()),
    )
}

impl RouteTableError {
    pub(super) fn invalid(path: Option<&Path>, message: &str) -> Self {
        Self::Invalid {
            path: path.map(Path::to_path_buf),
            message: message.to_owned(),
        }
    }

    pub(super) fn route(path: Option<&Path>, index: usize, prefix: &str, message: String) -> Self {
        Self::Route {
            path: path.map(Path::to_path_buf),
            number: index + 1,
            prefix: prefix.to_owned(),
            message,
        }
    }

    fn with_path(self, file: Option<&Path>) -> Self {
        let file = file.map(Path::to_path_buf);
        match self {
            Self::Parse { message, .. } => Self::Parse {
                path: file,
                message,
            },
            Self::Route {
                number,
                prefix,
                message,
                ..
            } => Self::Route {
                path: file,
                number,
                prefix,
                message,
            },
            Self::Invalid { message, .. } => Self::Invalid {
                path: file,
                message,
            },
            read @ Self::Read { .. } => read,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// `[[route]]` entries; `[[routes]]` is accepted too, since both read naturally.
    #[serde(default, alias = "routes")]
    route: Vec<RawRoute>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    prefix: String,
    service: Option<String>,
    upstreams: Option<Vec<RawUpstream>>,
    rewrite: Option<String>,
    timeout_ms: Option<u64>,
    #[serde(default)]
    auth: AuthPolicy,
    rate_limit: Option<RawRate>,
    body_limit: Option<u64>,
    cache_ttl_ms: Option<u64>,
    methods: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    service: String,
    weight: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRate {
    per_second: f64,
    burst: u32,
    #[serde(default)]
    key: RateKeyKind,
}

pub(super) fn parse(text: &str, path: Option<&Path>) -> Result<RouteTable, RouteTableError> {
    let file: File = toml::from_str(text).map_err(|e| RouteTableError::Parse {
        path: path.map(Path::to_path_buf),
        message: e.to_string().trim_end().to_owned(),
    })?;
    let mut routes = Vec::with_capacity(file.route.len());
    for (i, raw) in file.route.into_iter().enumerate() {
        let prefix = raw.prefix.clone();
        routes.push(convert(raw).map_err(|msg| RouteTableError::route(path, i, &prefix, msg))?);
    }
    RouteTable::new(routes).map_err(|e| e.with_path(path))
}

fn convert(raw: RawRoute) -> Result<Route, String> {
    let upstreams = match (raw.service, raw.upstreams) {
        (Some(service), None) => vec![Upstream {
            service: Arc::from(service),
            weight: 1,
        }],
        (None, Some(list)) => list
            .into_iter()
            .map(|u| Upstream {
                service: Arc::from(u.service),
                weight: u.weight,
            })
            .collect(),
        (Some(_), Some(_)) => {
            return Err("set either `service` or `upstreams`, not both".to_owned())
        }
        (None, None) => {
            return Err("needs `service` (or `upstreams` for a weighted split)".to_owned())
        }
    };
    let rate_limit = match raw.rate_limit {
        Some(r) => Some(RouteRateLimit {
            rate: Rate::new(r.per_second, r.burst).map_err(|e| format!("`rate_limit`: {e}"))?,
            key: r.key,
        }),
        None => None,
    };
    let methods = match raw.methods {
        Some(list) => Some(
            list.iter()
                .map(|m| parse_method(m))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    Ok(Route {
        prefix: raw.prefix,
        upstreams,
        rewrite: raw.rewrite,
        timeout: raw
            .timeout_ms
            .map_or(DEFAULT_TIMEOUT, Duration::from_millis),
        auth: raw.auth,
        rate_limit,
        body_limit: raw.body_limit.unwrap_or(DEFAULT_BODY_LIMIT),
        cache_ttl: raw
            .cache_ttl_ms
            .map_or(Duration::ZERO, Duration::from_millis),
        methods,
    })
}

fn parse_method(m: &str) -> Result<Method, String> {
    if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "`methods`: `{m}` is not an upper-case HTTP method such as GET or POST"
        ));
    }
    Method::from_bytes(m.as_bytes()).map_err(|_| format!("`methods`: `{m}` is not an HTTP method"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_parses_and_equals_the_default_table() {
        let example = include_str!("../../routes.example.toml");
        let table = RouteTable::from_toml_str(example).unwrap();
        assert_eq!(table, RouteTable::default());
    }

    #[test]
    fn parses_every_setting() {
        let t = RouteTable::from_toml_str(
            r#"
            [[route]]
            prefix = "/api/v1/catalog"
            upstreams = [{ service = "catalog", weight = 90 }, { service = "catalog-v2", weight = 10 }]
            rewrite = "/v2"
            timeout_ms = 1500
            auth = "admin"
            rate_limit = { per_second = 5, burst = 10, key = "ip" }
            body_limit = 1024
            cache_ttl_ms = 500
            methods = ["GET", "HEAD"]
            "#,
        )
        .unwrap();
        let r = &t.routes()[0];
        assert_eq!(r.upstreams.len(), 2);
        assert_eq!(r.upstreams[1].weight, 10);
        assert_eq!(r.rewrite.as_deref(), Some("/v2"));
        assert_eq!(r.timeout, Duration::from_millis(1500));
        assert_eq!(r.auth, AuthPolicy::Admin);
        assert_eq!(
            r.rate_limit.unwrap().rate,
            Rate {
                per_second: 5.0,
                burst: 10
            }
        );
        assert_eq!(r.rate_limit.unwrap().key, RateKeyKind::Ip);
        assert_eq!(r.body_limit, 1024);
        assert_eq!(r.cache_ttl, Duration::from_millis(500));
        assert_eq!(r.methods.as_deref(), Some(&[Method::GET, Method::HEAD][..]));
    }

    #[test]
    fn accepts_routes_as_the_table_name_too() {
        let t =
            RouteTable::from_toml_str("[[routes]]\nprefix = \"/a\"\nservice = \"x\"\n").unwrap();
        assert_eq!(t.routes()[0].prefix, "/a");
    }

    #[test]
    fn errors_name_the_route_and_the_rule() {
        let cases = [
            ("[[route]]\nprefix = \"/a\"\n", "route 1 (prefix `/a`): needs `service`"),
            ("[[route]]\nprefix = \"/a\"\nservice = \"x\"\ntimeout_ms = 0\n", "`timeout_ms` must be between"),
            ("[[route]]\nprefix = \"a\"\nservice = \"x\"\n", "`prefix` must start with '/'"),
            ("[[route]]\nprefix = \"/a\"\nservice = \"x\"\nauth = \"root\"\n", "unknown variant `root`"),
            ("[[route]]\nprefix = \"/a\"\nservice = \"x\"\ncache_ttl = 5\n", "unknown field `cache_ttl`"),
            ("[[route]]\nprefix = \"/a\"\nservice = \"x\"\nmethods = [\"get\"]\n", "upper-case HTTP method"),
            ("[[route]]\nprefix = \"/a\"\nservice = \"x\"\nrate_limit = { per_second = 0, burst = 1 }\n", "`rate_limit`"),
            ("[[route]]\nprefix = \"/a\"\nservice = \"x\"\n[[route]]\nprefix = \"/a\"\nservice = \"y\"\n", "route 2 (prefix `/a`): this prefix is already routed"),
            ("", "has no routes"),
            ("[[route]\n", "route table"),
        ];
        for (text, expected) in cases {
            let err = RouteTable::from_toml_str(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_file_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.toml");
        std::fs::write(
            &path,
            "[[route]]\nprefix = \"/a\"\nservice = \"x\"\nbody_limit = -1\n",
        )
        .unwrap();
        let err = RouteTable::from_toml_file(&path).unwrap_err().to_string();
        assert!(err.contains("routes.toml"), "{err}");
        let err = RouteTable::from_toml_file(dir.path().join("missing.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot read route table"), "{err}");
    }
}
