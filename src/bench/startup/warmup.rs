//! A little traffic through every service before memory is read: product reads (catalog),
//! registrations, logins and profile reads (identity), the JWKS — all through the gateway.

use std::collections::BTreeMap;

use futures::{stream, StreamExt as _};
use serde::Serialize;
use serde_json::json;

/// Product reads in the warm-up (half the list, half single products).
const PRODUCT_READS: usize = 2000;
/// Users registered (each then logs in and reads its profile).
const USERS: usize = 20;
/// Requests in flight at once.
const CONCURRENCY: usize = 8;

/// What the warm-up sent and what came back.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WarmupFigures {
    pub requests: u64,
    /// Answers other than the expected status, or failed requests.
    pub unexpected: u64,
    /// `"GET /api/v1/products/{id} → 200"` → count.
    pub outcomes: BTreeMap<String, u64>,
}

impl WarmupFigures {
    fn record(&mut self, what: &str, expected: u16, got: Option<u16>) {
        self.requests += 1;
        if got != Some(expected) {
            self.unexpected += 1;
        }
        let got = got.map_or_else(|| "failed".to_owned(), |s| s.to_string());
        *self.outcomes.entry(format!("{what} → {got}")).or_default() += 1;
    }
}

/// Sends the warm-up traffic to the gateway at `base` (`http://host:port`).
pub async fn run(client: &reqwest::Client, base: &str) -> anyhow::Result<WarmupFigures> {
    let mut figures = WarmupFigures::default();
    let list_url = format!("{base}/api/v1/products?limit=100");
    let list = client.get(&list_url).send().await;
    let mut ids: Vec<String> = Vec::new();
    match list {
        Ok(r) => {
            figures.record("GET /api/v1/products", 200, Some(r.status().as_u16()));
            if let Ok(body) = r.json::<serde_json::Value>().await {
                ids = body["items"]
                    .as_array()
                    .map(|items| {
                        items
                            .iter()
                            .filter_map(|p| p["id"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
            }
        }
        Err(_) => figures.record("GET /api/v1/products", 200, None),
    }

    let reads = (0..PRODUCT_READS).map(|i| {
        let (what, url) = match ids.get(i / 2 % ids.len().max(1)) {
            Some(id) if i % 2 == 1 => (
                "GET /api/v1/products/{id}",
                format!("{base}/api/v1/products/{id}"),
            ),
            _ => ("GET /api/v1/products", format!("{base}/api/v1/products")),
        };
        async move {
            (
                what,
                client
                    .get(url)
                    .send()
                    .await
                    .ok()
                    .map(|r| r.status().as_u16()),
            )
        }
    });
    let outcomes: Vec<_> = stream::iter(reads)
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for (what, got) in outcomes {
        figures.record(what, 200, got);
    }

    let users = (0..USERS).map(|i| user_session(client, base, i));
    let sessions: Vec<Vec<(&str, u16, Option<u16>)>> =
        stream::iter(users).buffer_unordered(4).collect().await;
    for (what, expected, got) in sessions.into_iter().flatten() {
        figures.record(what, expected, got);
    }

    let jwks = client
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await;
    figures.record(
        "GET /.well-known/jwks.json",
        200,
        jwks.ok().map(|r| r.status().as_u16()),
    );
    Ok(figures)
}

/// Register, log in, read the profile: the outcome of each step.
async fn user_session(
    client: &reqwest::Client,
    base: &str,
    i: usize,
) -> Vec<(&'static str, u16, Option<u16>)> {
    let email = format!("bench-{}@example.com", uuid::Uuid::new_v4().simple());
    let password = "bench-password-1234";
    let mut out = Vec::new();
    let created = client
        .post(format!("{base}/api/v1/users"))
        .json(&json!({"email": email, "password": password, "display_name": format!("Bench User {i}")}))
        .send()
        .await;
    out.push((
        "POST /api/v1/users",
        201,
        created.ok().map(|r| r.status().as_u16()),
    ));
    let token = client
        .post(format!("{base}/api/v1/auth/token"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await;
    let token = match token {
        Ok(r) => {
            out.push(("POST /api/v1/auth/token", 200, Some(r.status().as_u16())));
            r.json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| v["access_token"].as_str().map(str::to_owned))
        }
        Err(_) => {
            out.push(("POST /api/v1/auth/token", 200, None));
            None
        }
    };
    if let Some(token) = token {
        let me = client
            .get(format!("{base}/api/v1/users/me"))
            .bearer_auth(token)
            .send()
            .await;
        out.push((
            "GET /api/v1/users/me",
            200,
            me.ok().map(|r| r.status().as_u16()),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unexpected_answers_are_counted_apart() {
        let mut f = WarmupFigures::default();
        f.record("GET /x", 200, Some(200));
        f.record("GET /x", 200, Some(429));
        f.record("GET /x", 200, None);
        assert_eq!((f.requests, f.unexpected), (3, 2));
        assert_eq!(f.outcomes["GET /x → 429"], 1);
        assert_eq!(f.outcomes["GET /x → failed"], 1);
    }
}
