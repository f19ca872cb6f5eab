//! The registry's HTTP API as Rust calls.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;

use crate::{
    AllInstances, DiscoveryError, Instance, LeaseGrant, RegisteredInstance, ServiceInstances,
};

/// Bound on every call except [`RegistryClient::watch`]: the registry answers from memory, so a
/// slow answer means it is in trouble and the caller should carry on with what it knows.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Extra time a watch may take beyond its `wait`, for the registry to answer and the bytes to
/// travel.
const WATCH_SLACK: Duration = Duration::from_secs(5);

/// Problem details longer than this are cut in errors (they end up in logs).
const MAX_DETAIL_CHARS: usize = 200;

/// A lease granted by the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The instance is dropped this long after its last registration or heartbeat.
    pub ttl: Duration,
    /// How often to heartbeat.
    pub heartbeat: Duration,
}

/// What the registry said to a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatOutcome {
    /// The lease was renewed.
    Ok,
    /// The registry does not know the instance (its lease expired, or the registry restarted):
    /// register again.
    Unknown,
}

/// A client of the registry's HTTP API. Cheap to clone (one shared connection pool).
#[derive(Debug, Clone)]
pub struct RegistryClient {
    base: String,
    http: reqwest::Client,
}

impl RegistryClient {
    /// A client of the registry at `base_url`, e.g. `http://127.0.0.1:8090`.
    pub fn new(base_url: &str) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(REQUEST_TIMEOUT)
            .build()
            // Building only fails when a TLS backend cannot start; we build without TLS.
            .unwrap_or_default();
        Self::with_http_client(base_url, http)
    }

    /// A client that uses `http` (to share a pool or set options).
    pub fn with_http_client(base_url: &str, http: reqwest::Client) -> Self {
        RegistryClient {
            base: base_url.trim_end_matches('/').to_owned(),
            http,
        }
    }

    /// The registry base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Registers (or replaces) `instance`; returns the lease.
    pub async fn register(&self, instance: &Instance) -> Result<Lease, DiscoveryError> {
        let url = self.url(&["v1", "instances"])?;
        let res = self
            .send(
                self.http.request(Method::POST, url).json(instance),
                REQUEST_TIMEOUT,
            )
            .await?;
        let grant: LeaseGrant = expect_json(res, StatusCode::CREATED).await?;
        Ok(Lease {
            ttl: Duration::from_millis(grant.lease_ttl_ms),
            heartbeat: Duration::from_millis(grant.heartbeat_ms),
        })
    }

    /// Renews the lease of an instance.
    pub async fn heartbeat(
        &self,
        service: &str,
        instance_id: &str,
    ) -> Result<HeartbeatOutcome, DiscoveryError> {
        let url = self.url(&["v1", "instances", service, instance_id, "heartbeat"])?;
        let res = self
            .send(self.http.request(Method::PUT, url), REQUEST_TIMEOUT)
            .await?;
        match res.status() {
            StatusCode::NO_CONTENT | StatusCode::OK => Ok(HeartbeatOutcome::Ok),
            StatusCode::NOT_FOUND => Ok(HeartbeatOutcome::Unknown),
            _ => Err(status_error(res).await),
        }
    }

    /// Removes an instance (nothing happens if the registry does not know it).
    pub async fn deregister(&self, service: &str, instance_id: &str) -> Result<(), DiscoveryError> {
        let url = self.url(&["v1", "instances", service, instance_id])?;
        let res = self
            .send(self.http.request(Method::DELETE, url), REQUEST_TIMEOUT)
            .await?;
        match res.status() {
            StatusCode::NO_CONTENT | StatusCode::OK | StatusCode::NOT_FOUND => Ok(()),
            _ => Err(status_error(res).await),
        }
    }

    /// The current instances of `service` (sorted by id) and the index of that set.
    pub async fn list(&self, service: &str) -> Result<(u64, Vec<Instance>), DiscoveryError> {
        let url = self.url(&["v1", "services", service, "instances"])?;
        let res = self
            .send(self.http.request(Method::GET, url), REQUEST_TIMEOUT)
            .await?;
        let body: ServiceInstances = expect_json(res, StatusCode::OK).await?;
        Ok((body.index, body.instances))
    }

    /// Long-polls: answers when the set of `service` differs from the one at `index`, or after
    /// `wait` (at most 60 s; the registry clamps it) with the same index.
    pub async fn watch(
        &self,
        service: &str,
        index: u64,
        wait: Duration,
    ) -> Result<(u64, Vec<Instance>), DiscoveryError> {
        let mut url = self.url(&["v1", "services", service, "instances"])?;
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        url.query_pairs_mut()
            .append_pair("index", &index.to_string())
            .append_pair("wait", &wait_ms.to_string());
        let res = self
            .send(self.http.request(Method::GET, url), wait + WATCH_SLACK)
            .await?;
        let body: ServiceInstances = expect_json(res, StatusCode::OK).await?;
        Ok((body.index, body.instances))
    }

    /// Every registered instance of every service, with lease times.
    pub async fn list_all(&self) -> Result<Vec<RegisteredInstance>, DiscoveryError> {
        let url = self.url(&["v1", "instances"])?;
        let res = self
            .send(self.http.request(Method::GET, url), REQUEST_TIMEOUT)
            .await?;
        let body: AllInstances = expect_json(res, StatusCode::OK).await?;
        Ok(body.instances)
    }

    /// Builds a URL from path segments, percent-encoding each one: names come from callers and
    /// must not be able to change the path.
    fn url(&self, segments: &[&str]) -> Result<Url, DiscoveryError> {
        let invalid = || DiscoveryError::InvalidUrl(self.base.clone());
        let mut url = Url::parse(&self.base).map_err(|_| invalid())?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid());
        }
        url.path_segments_mut()
            .map_err(|()| invalid())?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<reqwest::Response, DiscoveryError> {
        req.timeout(timeout)
            .send()
            .await
            .map_err(DiscoveryError::Unreachable)
    }
}

async fn expect_json<T: DeserializeOwned>(
    res: reqwest::Response,
    expected: StatusCode,
) -> Result<T, DiscoveryError> {
    if res.status() != expected {
        return Err(status_error(res).await);
    }
    let bytes = res.bytes().await.map_err(DiscoveryError::Unreachable)?;
    serde_json::from_slice(&bytes).map_err(|e| DiscoveryError::Decode(e.to_string()))
}

async fn status_error(res: reqwest::Response) -> DiscoveryError {
    let status = res.status().as_u16();
    let body = res.bytes().await.unwrap_or_default();
    let detail = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    DiscoveryError::Status {
        status,
        detail: detail.chars().take(MAX_DETAIL_CHARS).collect(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded_so_names_cannot_change_the_path() {
        let c = RegistryClient::new("http://127.0.0.1:8090/");
        let url = c
            .url(&["v1", "instances", "a/../b", "x?y", "heartbeat"])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8090/v1/instances/a%2F..%2Fb/x%3Fy/heartbeat"
        );
    }

    #[test]
    fn a_base_path_is_kept() {
        let c = RegistryClient::new("http://registry.local/bazaar");
        assert_eq!(
            c.url(&["v1", "instances"]).unwrap().as_str(),
            "http://registry.local/bazaar/v1/instances"
        );
    }

    #[test]
    fn an_unusable_base_url_is_an_error_not_a_panic() {
        for base in ["", "not a url", "mailto:x@y", "ftp://x"] {
            let c = RegistryClient::new(base);
            assert!(
                matches!(c.url(&["v1"]), Err(DiscoveryError::InvalidUrl(_))),
                "{base}"
            );
        }
    }

    #[tokio::test]
    async fn calls_to_a_closed_port_are_unreachable_errors() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let c = RegistryClient::new(&format!("http://{addr}"));
        let err = c.list("catalog").await.unwrap_err();
        assert!(err.is_unreachable(), "{err}");
    }
}
