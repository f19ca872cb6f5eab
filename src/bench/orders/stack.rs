//! The shop under test: `bazaar up` (this binary) in a temporary data directory on free
//! ports, and what the bench sets up in it before the clock starts (an admin token, stock for
//! every demo product, customers with tokens).

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use futures::{stream, StreamExt as _, TryStreamExt as _};
use http::HeaderValue;
use rand::{distributions::Alphanumeric, Rng as _};
use serde::Deserialize;
use serde_json::json;

use super::{
    super::{
        process::{bazaar_command, free_ports, ChildProc, TempDir},
        progress::Progress,
        startup::parse_up_line,
    },
    cleanup::External,
    workload::{order_body, Product, PREFER_WAIT_SECS},
};

/// A rate limit no client of the bench can reach: limiting runs, but never refuses.
pub const RATE_OUT_OF_THE_WAY: &str = "1000000/s,burst=1000000";
/// Shipping's handling time: longer than any run, so no shipment is claimed or dispatched
/// while the bench measures placement.
pub const HANDLING_TIME: &str = "1h";
/// The stock count every product gets before the run: more than any run can reserve.
pub const ON_HAND: u64 = 1_000_000;
/// How long `bazaar up` may take to report that every service is ready.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long `bazaar up` may take to shut everything down.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// Registrations and logins in flight at once: each is an argon2id hash of ~19 MiB and tens
/// of ms of CPU in identity; more in flight would only queue there.
const SETUP_CONCURRENCY: usize = 4;
/// How often one login is retried after the login route's per-IP rate limit refused it.
const LOGIN_ATTEMPTS: u32 = 600;
/// The demo catalog has a few dozen products; this bounds the listing.
const MAX_PRODUCTS: usize = 1000;
const ADMIN_EMAIL: &str = "admin@bazaar.local";

/// Which bus and databases the shop runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backends {
    /// The defaults of `bazaar up`: feeds (no broker) and one SQLite file per service.
    FeedsSqlite,
    /// NATS JetStream and one PostgreSQL database per service, on these servers.
    NatsPostgres(External),
}

/// A running `bazaar up` and where to reach it.
pub struct Stack {
    up: ChildProc,
    pub gateway: SocketAddr,
    pub base: String,
    admin_password: String,
    /// Spawn → `Bazaar is up` printed.
    pub ready: Duration,
    /// The temporary data directory; removed on drop, after `up` (declared first) has been
    /// signalled.
    _dir: TempDir,
}

impl Stack {
    /// Starts `bazaar up` and waits until it reports every service ready.
    pub async fn start(
        backends: &Backends,
        sqlite_synchronous: Option<&str>,
    ) -> anyhow::Result<Stack> {
        let dir = TempDir::new("orders")?;
        let [registry_port, gateway_port] = free_ports::<2>()?;
        let gateway: SocketAddr = ([127, 0, 0, 1], gateway_port).into();
        let admin_password = random_string(24);
        let mut cmd = bazaar_command()?;
        cmd.arg("up")
            .env("BAZAAR_DATA_DIR", dir.path())
            .env(
                "BAZAAR_REGISTRY_URL",
                format!("http://127.0.0.1:{registry_port}"),
            )
            .env("BAZAAR_GATEWAY_ADDR", gateway.to_string())
            .env("BAZAAR_ADMIN_PASSWORD", &admin_password)
            .env("BAZAAR_RATE_LIMIT_USER", RATE_OUT_OF_THE_WAY)
            .env("BAZAAR_RATE_LIMIT_ANON", RATE_OUT_OF_THE_WAY)
            .env("BAZAAR_HANDLING_TIME", HANDLING_TIME);
        if let Some(mode) = sqlite_synchronous {
            cmd.env("BAZAAR_SQLITE_SYNCHRONOUS", mode);
        }
        if let Backends::NatsPostgres(external) = backends {
            cmd.env("BAZAAR_DATABASE_URL", external.database_template())
                .env("BAZAAR_BUS", &external.nats_url)
                .env("BAZAAR_BUS_NAMESPACE", &external.namespace);
        }
        // No kill_on_drop: `up` must get SIGTERM (the guard's drop) to stop its children.
        let spawned = Instant::now();
        let mut up = ChildProc::spawn("bazaar up", cmd)?;
        if let Err(e) = up.wait_for_line(START_TIMEOUT, parse_up_line).await {
            // Wait for the services to stop before the caller drops their databases.
            let _ = up.stop(STOP_GRACE).await;
            return Err(e);
        }
        Ok(Stack {
            up,
            gateway,
            base: format!("http://{gateway}"),
            admin_password,
            ready: spawned.elapsed(),
            _dir: dir,
        })
    }

    /// Stops `bazaar up` (which stops every service) and waits for it; the data directory
    /// goes with `self`.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.up.stop(STOP_GRACE).await
    }

    /// Everything the load needs, prepared before the clock starts.
    pub async fn prepare(
        &self,
        clients: usize,
        label: &str,
        progress: &Progress,
    ) -> anyhow::Result<Prepared> {
        let began = Instant::now();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let admin = login(&http, &self.base, ADMIN_EMAIL, &self.admin_password)
            .await
            .context("log in as the admin")?;
        let products = list_products(&http, &self.base).await?;
        if products.is_empty() {
            anyhow::bail!("the demo catalog is empty: nothing to order");
        }
        for p in &products {
            set_stock(&http, &self.base, &admin.token, &p.sku).await?;
        }
        progress.note(&format!(
            "{label}: stock of {} products set to {ON_HAND}; registering {clients} customers (argon2id, {SETUP_CONCURRENCY} at a time)…",
            products.len()
        ));
        let password = random_string(20);
        let run = random_string(8).to_ascii_lowercase();
        let emails: Vec<String> = (0..clients)
            .map(|i| format!("bench-{run}-{i}@example.com"))
            .collect();
        stream::iter(emails.iter().enumerate())
            .map(|(i, email)| register(&http, &self.base, email, &password, i))
            .buffer_unordered(SETUP_CONCURRENCY)
            .try_collect::<()>()
            .await?;
        // Logins after every registration, so the tokens (15 minutes) are as fresh as can be.
        let logins: Vec<Login> = stream::iter(emails.iter())
            .map(|email| login(&http, &self.base, email, &password))
            .buffered(SETUP_CONCURRENCY)
            .try_collect()
            .await?;
        let refused_logins =
            logins.iter().map(|l| u64::from(l.refused)).sum::<u64>() + u64::from(admin.refused);
        let authorizations = logins
            .into_iter()
            .map(|l| HeaderValue::try_from(format!("Bearer {}", l.token)))
            .collect::<Result<Vec<_>, _>>()
            .context("a token is not a valid header value")?;
        let prepared = Prepared {
            authorizations: authorizations.into(),
            products,
            setup: began.elapsed(),
            refused_logins,
        };
        self.probe(&http, &prepared).await?;
        Ok(prepared)
    }

    /// Places one order and insists it is confirmed: a shop that cannot confirm one order
    /// alone is not worth loading (and the error says why far better than a rate of 0).
    async fn probe(&self, http: &reqwest::Client, prepared: &Prepared) -> anyhow::Result<()> {
        let (Some(product), Some(auth)) =
            (prepared.products.first(), prepared.authorizations.first())
        else {
            anyhow::bail!("no product or no customer to place a probe order");
        };
        let r = http
            .post(format!("{}/api/v1/orders", self.base))
            .header("authorization", auth)
            .header(
                "idempotency-key",
                format!("bench-probe-{}", random_string(16)),
            )
            .header("prefer", format!("wait={PREFER_WAIT_SECS}"))
            .header("content-type", "application/json")
            .body(order_body(&product.id))
            .send()
            .await
            .context("place a probe order")?;
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        let confirmed = serde_json::from_str::<serde_json::Value>(&body)
            .map(|v| v["status"] == "confirmed")
            .unwrap_or(false);
        if status != reqwest::StatusCode::CREATED || !confirmed {
            anyhow::bail!("a probe order was not confirmed ({status}): {body}");
        }
        Ok(())
    }
}

/// What the load runs with.
pub struct Prepared {
    /// `Bearer …` of one customer per client.
    pub authorizations: Arc<[HeaderValue]>,
    pub products: Vec<Product>,
    /// How long the preparation took (stock, registrations, logins, the probe order).
    pub setup: Duration,
    /// Logins the login route's rate limit refused first (each retried after `Retry-After`).
    pub refused_logins: u64,
}

fn random_string(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A token, and how often the login route's rate limit made the bench wait for it.
struct Login {
    token: String,
    refused: u32,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

/// `POST /api/v1/auth/token`, waiting out the login route's per-IP rate limit (it is not
/// raised for the bench: it is the shop's defence against password guessing).
async fn login(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<Login> {
    let mut refused = 0;
    while refused < LOGIN_ATTEMPTS {
        let r = http
            .post(format!("{base}/api/v1/auth/token"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .with_context(|| format!("log in as {email}"))?;
        match r.status() {
            reqwest::StatusCode::OK => {
                let answer: TokenAnswer = r.json().await.context("read a token")?;
                return Ok(Login {
                    token: answer.access_token,
                    refused,
                });
            }
            reqwest::StatusCode::TOO_MANY_REQUESTS => {
                refused += 1;
                tokio::time::sleep(retry_after(r.headers())).await;
            }
            status => {
                let body = r.text().await.unwrap_or_default();
                anyhow::bail!("logging in as {email} answered {status}: {body}");
            }
        }
    }
    anyhow::bail!("logging in as {email} was refused {LOGIN_ATTEMPTS} times (rate limit)")
}

/// The wait a 429 asks for (`Retry-After` in seconds), at least 100 ms and at most 10 s.
pub fn retry_after(headers: &http::HeaderMap) -> Duration {
    headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs)
        .clamp(Duration::from_millis(100), Duration::from_secs(10))
}

async fn register(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
    i: usize,
) -> anyhow::Result<()> {
    let r = http
        .post(format!("{base}/api/v1/users"))
        .json(&json!({"email": email, "password": password, "display_name": format!("Bench Customer {i}")}))
        .send()
        .await
        .with_context(|| format!("register {email}"))?;
    if r.status() != reqwest::StatusCode::CREATED {
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        anyhow::bail!("registering {email} answered {status}: {body}");
    }
    Ok(())
}

#[derive(Deserialize)]
struct ProductPage {
    items: Vec<ProductItem>,
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct ProductItem {
    id: String,
    sku: String,
}

/// Every product of the catalog, page by page.
async fn list_products(http: &reqwest::Client, base: &str) -> anyhow::Result<Vec<Product>> {
    let mut products = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut req = http
            .get(format!("{base}/api/v1/products"))
            .query(&[("limit", "100")]);
        if let Some(c) = &cursor {
            req = req.query(&[("cursor", c)]);
        }
        let r = req.send().await.context("list the products")?;
        if !r.status().is_success() {
            anyhow::bail!("listing the products answered {}", r.status());
        }
        let page: ProductPage = r.json().await.context("read the product list")?;
        products.extend(page.items.into_iter().map(|p| Product {
            id: p.id,
            sku: p.sku,
        }));
        match page.next_cursor {
            Some(next) if products.len() < MAX_PRODUCTS => cursor = Some(next),
            _ => return Ok(products),
        }
    }
}

/// `PUT /api/v1/inventory/{sku}` `{"on_hand": ON_HAND}` as the admin.
async fn set_stock(
    http: &reqwest::Client,
    base: &str,
    admin_token: &str,
    sku: &str,
) -> anyhow::Result<()> {
    let r = http
        .put(format!("{base}/api/v1/inventory/{sku}"))
        .bearer_auth(admin_token)
        .json(&json!({ "on_hand": ON_HAND }))
        .send()
        .await
        .with_context(|| format!("set the stock of {sku}"))?;
    if !r.status().is_success() {
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        anyhow::bail!("setting the stock of {sku} answered {status}: {body}");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_waits_what_retry_after_says_within_bounds() {
        let mut h = http::HeaderMap::new();
        assert_eq!(retry_after(&h), Duration::from_secs(1));
        h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Duration::from_secs(3));
        h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("0"));
        assert_eq!(retry_after(&h), Duration::from_millis(100));
        h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("3600"));
        assert_eq!(retry_after(&h), Duration::from_secs(10));
        h.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Duration::from_secs(1));
    }
}
