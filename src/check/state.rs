//! The state `bazaar check` reads: every service's `GET /admin/state`, the supervisor's
//! record of exits, the panic files, and what a chaos run wrote about itself.
//!
//! The shapes mirror the services' admin answers; every field has a default so a service that
//! adds fields, or one that is missing (a `--target` check cannot reach the payment provider),
//! leaves a clear gap instead of a parse error.

use std::{collections::HashMap, path::Path, time::Duration};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::run_file::RunFile;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Messaging {
    pub outbox_unsent: i64,
    pub inbox_processed: i64,
    pub inbox_duplicates: i64,
    pub dead_letters: i64,
    pub dead_letters_total: i64,
    pub subscriptions: Vec<SubscriptionLag>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SubscriptionLag {
    pub subscription: String,
    pub lag: Option<i64>,
}

impl Messaging {
    /// Events known to wait for this service's consumers.
    pub fn lag(&self) -> i64 {
        self.subscriptions.iter().filter_map(|s| s.lag).sum()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OrderItem {
    pub product_id: String,
    pub sku: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Saga {
    pub step: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Order {
    pub id: String,
    pub user_id: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub total_minor: i64,
    pub payment_status: String,
    pub shipment_status: String,
    pub items: Vec<OrderItem>,
    pub saga: Option<Saga>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct IdempotencyKey {
    pub user_id: String,
    pub key: String,
    pub order_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Stock {
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub adjustments: i64,
    pub commits: i64,
    pub reserves: i64,
    pub releases: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ReservationLine {
    pub sku: String,
    pub quantity: i64,
    pub short: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Reservation {
    pub order_id: String,
    pub status: String,
    pub reason: String,
    pub lines: Vec<ReservationLine>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Payment {
    pub order_id: String,
    pub status: String,
    pub amount_minor: i64,
    pub psp_charge_key: String,
    pub captured_minor: i64,
    pub refunded_minor: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Charge {
    pub idempotency_key: String,
    pub status: String,
    pub amount_minor: i64,
    pub refunded_minor: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Shipment {
    pub order_id: String,
    pub status: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Notification {
    pub order_id: Option<String>,
    pub kind: String,
}

/// One service's `/admin/state`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ServiceState {
    pub service: String,
    pub messaging: Option<Messaging>,
    pub orders: Vec<Order>,
    pub idempotency_keys: Vec<IdempotencyKey>,
    pub stock: Vec<Stock>,
    pub reservations: Vec<Reservation>,
    pub payments: Vec<Payment>,
    pub charges: Vec<Charge>,
    pub shipments: Vec<Shipment>,
    pub notifications: Vec<Notification>,
}

/// What a chaos run recorded about one kill.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kill {
    pub at_unix_ms: i64,
    pub instance_id: String,
    pub pid: u32,
}

/// What `bazaar chaos` leaves in the data directory for `check`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ChaosNotes {
    /// The fault phase, Unix ms.
    pub faults_from_unix_ms: i64,
    pub faults_to_unix_ms: i64,
    /// Every SIGKILL the nemesis sent (the supervisor records them as exits).
    pub kills: Vec<Kill>,
    /// Inventory's stock per SKU before the load began: `sku → adjustments`.
    pub initial_adjustments: HashMap<String, i64>,
}

impl ChaosNotes {
    pub fn path(data_dir: &Path) -> std::path::PathBuf {
        data_dir.join("chaos.json")
    }
}

/// Where the states come from.
pub enum Source {
    /// Each service's own port, from `run.json`.
    Direct(RunFile),
    /// The gateway's `/api/v1/admin/state?service=X` (the payment provider is not behind it).
    Gateway(String),
}

/// The services whose state is read.
pub const SERVICES: [&str; 8] = [
    "identity",
    "catalog",
    "inventory",
    "payment",
    "order",
    "shipping",
    "notification",
    "psp",
];

/// Reads every service's state with an admin token. A service that cannot be read is an
/// error: checking without it would pass what it cannot see.
pub async fn fetch_all(
    source: &Source,
    token: &str,
) -> anyhow::Result<HashMap<&'static str, ServiceState>> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .no_proxy()
        .build()?;
    let mut out = HashMap::new();
    for service in SERVICES {
        let url = match source {
            Source::Direct(run) => {
                let Some(p) = run
                    .processes
                    .iter()
                    .find(|p| p.service == service && !p.addr.is_empty())
                else {
                    anyhow::bail!("run.json lists no running {service}");
                };
                format!("http://{}/admin/state", p.addr)
            }
            Source::Gateway(base) => {
                if service == "psp" {
                    continue;
                }
                format!(
                    "{}/api/v1/admin/state?service={service}",
                    base.trim_end_matches('/')
                )
            }
        };
        let state = get_json(&http, &url, token)
            .await
            .with_context(|| format!("read the state of {service}"))?;
        let mut parsed: ServiceState = serde_json::from_value(state)
            .with_context(|| format!("parse the state of {service}"))?;
        // Feeds: only the replica reading a subscription knows its lag; take every replica's.
        if let (Source::Direct(run), Some(m)) = (source, parsed.messaging.as_mut()) {
            for p in run
                .processes
                .iter()
                .filter(|p| p.service == service && !p.addr.is_empty())
            {
                let url = format!("http://{}/admin/messaging", p.addr);
                let Ok(v) = get_json(&http, &url, token).await else {
                    continue;
                };
                let Ok(other) = serde_json::from_value::<Messaging>(v) else {
                    continue;
                };
                for sub in other.subscriptions {
                    match m
                        .subscriptions
                        .iter_mut()
                        .find(|s| s.subscription == sub.subscription)
                    {
                        Some(s) => s.lag = s.lag.max(sub.lag),
                        None => m.subscriptions.push(sub),
                    }
                }
            }
        }
        out.insert(service, parsed);
    }
    Ok(out)
}

async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<Value> {
    let mut last = None;
    // A service may be restarting (the last fault of a chaos run): a few tries.
    for _ in 0..10 {
        match http.get(url).bearer_auth(token).send().await {
            Ok(res) if res.status().is_success() => return Ok(res.json().await?),
            Ok(res) => last = Some(anyhow::anyhow!("GET {url} answered {}", res.status())),
            Err(e) => last = Some(anyhow::anyhow!("GET {url}: {e}")),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("GET {url} failed")))
}

/// An admin token from identity, through the gateway.
pub async fn admin_token(gateway: &str, password: &str) -> anyhow::Result<String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .no_proxy()
        .build()?;
    let url = format!("{}/api/v1/auth/token", gateway.trim_end_matches('/'));
    let mut last = None;
    for _ in 0..20 {
        match http
            .post(&url)
            .json(&serde_json::json!({"email": "admin@bazaar.local", "password": password}))
            .send()
            .await
        {
            Ok(res) if res.status().is_success() => {
                let v: Value = res.json().await?;
                return v["access_token"]
                    .as_str()
                    .map(str::to_owned)
                    .context("the token answer has no access_token");
            }
            Ok(res) if res.status() == reqwest::StatusCode::UNAUTHORIZED => {
                anyhow::bail!("the admin password was refused")
            }
            Ok(res) => last = Some(anyhow::anyhow!("POST {url} answered {}", res.status())),
            Err(e) => last = Some(anyhow::anyhow!("POST {url}: {e}")),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("POST {url} failed")))
}
