//! What a run prepares before the clock starts: the catalog's products, the customers (each
//! registered and logged in) and the admin's token. None of it is measured or recorded.

use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use futures::{stream, StreamExt as _, TryStreamExt as _};
use reqwest::{header, Method};
use serde::Deserialize;
use serde_json::json;

use super::{
    client::{access_token, json_str, login_body, Account},
    retry::{backoff, with_jitter, BACKOFF_CAP},
};

/// The admin account `bazaar up` creates.
pub const ADMIN_EMAIL: &str = "admin@bazaar.local";
/// The password of every customer the load generator registers.
pub const CUSTOMER_PASSWORD: &str = "load-generator-password";
/// Registrations and logins in flight at once during setup: each is an argon2id hash in
/// identity, so more at once would only queue there.
const SETUP_CONCURRENCY: usize = 4;
/// Attempts of one setup request: patient, since the login route allows 10/s per IP.
const SETUP_ATTEMPTS: u32 = 60;
/// Product pages followed at most (100 products each).
const MAX_PAGES: usize = 100;

/// A product of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Product {
    pub id: String,
    pub sku: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub category: String,
}

/// One page of `GET /api/v1/products`.
#[derive(Debug, Deserialize)]
pub struct ProductPage {
    pub items: Vec<Product>,
    pub next_cursor: Option<String>,
}

/// Sends a setup request until it gets an answer other than a 429, a 5xx or a transport
/// error (those are waited out); returns the status and body.
async fn call(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    body: Option<Bytes>,
    token: Option<&str>,
) -> anyhow::Result<(u16, Bytes)> {
    let mut attempt = 1;
    loop {
        let mut b = http.request(method.clone(), url);
        if let Some(body) = &body {
            b = b
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        if let Some(t) = token {
            b = b.bearer_auth(t);
        }
        let wait = match b.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let retry_after = r
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s).min(BACKOFF_CAP));
                let body = r.bytes().await;
                match (status, body) {
                    (429, _) => retry_after.unwrap_or_else(|| backoff(attempt)),
                    (500.., _) => backoff(attempt),
                    (_, Ok(body)) => return Ok((status, body)),
                    (_, Err(e)) if attempt >= SETUP_ATTEMPTS => {
                        return Err(e).with_context(|| format!("{method} {url}"))
                    }
                    (_, Err(_)) => backoff(attempt),
                }
            }
            Err(e) if attempt >= SETUP_ATTEMPTS || (attempt >= 3 && e.is_connect()) => {
                return Err(e).with_context(|| format!("{method} {url}"));
            }
            Err(_) => backoff(attempt),
        };
        if attempt >= SETUP_ATTEMPTS {
            anyhow::bail!("{method} {url}: still refused or failing after {attempt} attempts");
        }
        let wait = with_jitter(wait, &mut rand::thread_rng());
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

/// Every product of the catalog, following `next_cursor`.
pub async fn fetch_products(http: &reqwest::Client, base: &str) -> anyhow::Result<Vec<Product>> {
    let mut products = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut url = format!("{base}/api/v1/products?limit=100");
        if let Some(c) = &cursor {
            url.push_str("&cursor=");
            url.push_str(&encode_query(c));
        }
        let (status, body) = call(http, Method::GET, &url, None, None).await?;
        if status != 200 {
            anyhow::bail!(
                "GET {url} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let page: ProductPage = serde_json::from_slice(&body)
            .with_context(|| format!("GET {url}: not a product page"))?;
        products.extend(page.items);
        match page.next_cursor {
            Some(c) if !c.is_empty() => cursor = Some(c),
            _ => break,
        }
    }
    Ok(products)
}

/// Logs in; the access token.
pub async fn login(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let url = format!("{base}/api/v1/auth/token");
    let (status, body) = call(
        http,
        Method::POST,
        &url,
        Some(login_body(email, password)),
        None,
    )
    .await?;
    if status != 200 {
        anyhow::bail!("the login of {email} was answered {status}");
    }
    access_token(&body).with_context(|| format!("the login of {email} answered no access_token"))
}

/// Registers `n` customers with unique emails and logs each in.
pub async fn register_customers(
    http: &reqwest::Client,
    base: &str,
    n: usize,
    seed: u64,
    run_id: &str,
) -> anyhow::Result<Vec<Account>> {
    stream::iter(0..n)
        .map(|i| {
            let email = customer_email(seed, run_id, &i.to_string());
            async move { register(http, base, email, &format!("Load Customer {i}")).await }
        })
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await
}

/// A customer email unique to this run: `load-<seed>-<run>-<n>@example.com`.
pub fn customer_email(seed: u64, run_id: &str, n: &str) -> String {
    format!("load-{seed}-{run_id}-{n}@example.com")
}

/// The body of `POST /api/v1/users` for a load customer.
pub fn registration_body(email: &str, display_name: &str) -> Bytes {
    Bytes::from(
        json!({"email": email, "password": CUSTOMER_PASSWORD, "display_name": display_name})
            .to_string(),
    )
}

async fn register(
    http: &reqwest::Client,
    base: &str,
    email: String,
    display_name: &str,
) -> anyhow::Result<Account> {
    let url = format!("{base}/api/v1/users");
    let (status, body) = call(
        http,
        Method::POST,
        &url,
        Some(registration_body(&email, display_name)),
        None,
    )
    .await?;
    if status != 201 {
        anyhow::bail!(
            "registering {email} was answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let id = json_str(&body, "id");
    let token = login(http, base, &email, CUSTOMER_PASSWORD).await?;
    Ok(Account::new(id, email, CUSTOMER_PASSWORD.to_owned(), token))
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for a query value or a
/// path segment.
pub fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode_query("abc-1_2.3~"), "abc-1_2.3~");
        assert_eq!(encode_query("a b+c/=é"), "a%20b%2Bc%2F%3D%C3%A9");
    }

    #[test]
    fn customer_emails_carry_the_seed_and_the_run() {
        assert_eq!(customer_email(7, "ab12", "3"), "load-7-ab12-3@example.com");
    }
}
