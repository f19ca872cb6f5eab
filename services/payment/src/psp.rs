//! The client of the external card processor (the `psp` stand-in, or a real one with the same
//! API): plain HTTP + JSON, one bounded timeout per call. The breaker sits one level up, in
//! [`crate::payments`], which decides what counts as a failure of the processor.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use bazaar_discovery::Resolver;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

/// The registry name the processor is discovered under when no URL is configured.
pub const PSP_SERVICE: &str = "psp";

/// Why a call to the processor produced no answer to act on.
#[derive(Debug, thiserror::Error)]
pub enum PspError {
    /// No answer within the timeout. The call may still have had its effect.
    #[error("the payment provider did not answer in time")]
    Timeout,
    /// It could not be reached, or answered 5xx (no effect, by its contract).
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
    /// It refused the request (4xx other than those a caller handles as an answer).
    #[error("the payment provider refused the request with {status}")]
    Refused {
        /// The HTTP status.
        status: u16,
    },
    /// It answered something this client does not understand.
    #[error("the payment provider answered unexpectedly: {0:#}")]
    Protocol(anyhow::Error),
}

impl PspError {
    /// Whether this says the processor is unhealthy (what a circuit breaker counts).
    pub fn is_provider_failure(&self) -> bool {
        matches!(
            self,
            PspError::Timeout | PspError::Unavailable(_) | PspError::Protocol(_)
        )
    }
}

/// A charge as the processor reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PspCharge {
    /// The processor's id.
    pub id: String,
    /// `captured` or `declined`.
    pub status: String,
    /// What was charged.
    pub amount_minor: i64,
    /// In what currency.
    pub currency: String,
    /// Why it was declined.
    #[serde(default)]
    pub decline_code: Option<String>,
}

/// A refund as the processor reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PspRefund {
    /// The processor's id.
    pub id: String,
    /// What was given back.
    pub amount_minor: i64,
}

/// What a charge request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeAnswer {
    /// The processor made (or, for a repeated key, found) the charge.
    Charge(PspCharge),
    /// The processor refused the card token as invalid (422): no charge exists.
    InvalidCard,
}

#[derive(Serialize)]
struct ChargeBody<'a> {
    idempotency_key: &'a str,
    amount_minor: i64,
    currency: &'a str,
    card_token: &'a str,
}

#[derive(Serialize)]
struct RefundBody<'a> {
    idempotency_key: &'a str,
    charge_idempotency_key: &'a str,
    amount_minor: i64,
}

enum Target {
    Url(String),
    Discover(Arc<dyn Resolver>),
}

/// Calls the processor.
#[derive(Clone)]
pub struct PspClient {
    http: reqwest::Client,
    target: Arc<Target>,
    timeout: Duration,
}

impl std::fmt::Debug for PspClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = match &*self.target {
            Target::Url(u) => u.as_str(),
            Target::Discover(_) => "discovered",
        };
        f.debug_struct("PspClient")
            .field("target", &target)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl PspClient {
    /// A client of the processor at `url` (`http://host:port`), or of the instances of the
    /// `psp` service that `resolver` knows. Every call gives up after `timeout`.
    pub fn new(
        url: Option<String>,
        resolver: Arc<dyn Resolver>,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            // A connection that cannot be made is a provider failure, quickly.
            .connect_timeout(timeout.min(Duration::from_secs(1)))
            .build()
            .context("build the payment provider's HTTP client")?;
        let target = match url {
            Some(u) => Target::Url(u.trim_end_matches('/').to_owned()),
            None => Target::Discover(resolver),
        };
        Ok(PspClient {
            http,
            target: Arc::new(target),
            timeout,
        })
    }

    /// The timeout of every call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn base(&self) -> Result<String, PspError> {
        match &*self.target {
            Target::Url(u) => Ok(u.clone()),
            Target::Discover(resolver) => {
                let instances = resolver.resolve(PSP_SERVICE).await;
                if instances.is_empty() {
                    return Err(PspError::Unavailable(
                        "no instance of the payment provider is known".to_owned(),
                    ));
                }
                let i = rand::random::<usize>() % instances.len();
                Ok(format!("http://{}", instances[i].http_addr))
            }
        }
    }

    /// `POST /v1/charges`.
    #[tracing::instrument(skip(self, card_token))]
    pub async fn charge(
        &self,
        idempotency_key: &str,
        amount_minor: i64,
        currency: &str,
        card_token: &str,
    ) -> Result<ChargeAnswer, PspError> {
        let url = format!("{}/v1/charges", self.base().await?);
        let req = self.http.post(url).json(&ChargeBody {
            idempotency_key,
            amount_minor,
            currency,
            card_token,
        });
        let res = self.send(req).await?;
        match res.status() {
            s if s.is_success() => Ok(ChargeAnswer::Charge(read(res).await?)),
            StatusCode::UNPROCESSABLE_ENTITY => Ok(ChargeAnswer::InvalidCard),
            s => Err(refusal(s)),
        }
    }

    /// `GET /v1/charges/{key}`: the charge, or `None` if the processor never recorded it.
    #[tracing::instrument(skip(self))]
    pub async fn find_charge(&self, idempotency_key: &str) -> Result<Option<PspCharge>, PspError> {
        let url = format!("{}/v1/charges/{idempotency_key}", self.base().await?);
        let res = self.send(self.http.get(url)).await?;
        match res.status() {
            s if s.is_success() => Ok(Some(read(res).await?)),
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(refusal(s)),
        }
    }

    /// `POST /v1/refunds`.
    #[tracing::instrument(skip(self))]
    pub async fn refund(
        &self,
        idempotency_key: &str,
        charge_idempotency_key: &str,
        amount_minor: i64,
    ) -> Result<PspRefund, PspError> {
        let url = format!("{}/v1/refunds", self.base().await?);
        let req = self.http.post(url).json(&RefundBody {
            idempotency_key,
            charge_idempotency_key,
            amount_minor,
        });
        let res = self.send(req).await?;
        match res.status() {
            s if s.is_success() => read(res).await,
            s => Err(refusal(s)),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, PspError> {
        let mut req = req.timeout(self.timeout);
        // The trace continues into the provider's logs (a real one would ignore the header).
        if let Some(tp) = bazaar_runtime::context::with_current(|c| c.traceparent()) {
            req = req.header(bazaar_runtime::context::TRACEPARENT, tp);
        }
        let res = req.send().await.map_err(classify)?;
        if res.status().is_server_error() {
            return Err(PspError::Unavailable(format!("status {}", res.status())));
        }
        Ok(res)
    }
}

async fn read<T: serde::de::DeserializeOwned>(res: reqwest::Response) -> Result<T, PspError> {
    // The body is part of the answer: a provider that stalls mid-body times out here.
    let bytes = res.bytes().await.map_err(classify)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| PspError::Protocol(anyhow::Error::new(e).context("decode the answer")))
}

fn refusal(status: StatusCode) -> PspError {
    PspError::Refused {
        status: status.as_u16(),
    }
}

fn classify(e: reqwest::Error) -> PspError {
    if e.is_timeout() {
        PspError::Timeout
    } else {
        PspError::Unavailable(e.without_url().to_string())
    }
}
