//! Identity's public keys, found through discovery.

use std::sync::Arc;

use bazaar_auth::{FetchFuture, JwkSet, KeySource, KeySourceError, FETCH_TIMEOUT};
use rand::Rng;

use crate::{Instance, Resolver};

/// The service that signs tokens and publishes their keys.
pub const IDENTITY_SERVICE: &str = "identity";

/// Where identity publishes its JWKS.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// A JWKS larger than this is refused: ours holds a handful of 200-byte keys.
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Instances tried per fetch: one dead instance must not leave the verifier without keys, but a
/// fetch holds up a request, so it does not go through a long list.
const MAX_ATTEMPTS: usize = 3;

/// A [`KeySource`] that finds identity through `resolver` and GETs
/// `http://{http_addr}/.well-known/jwks.json` from one of its instances (another one if that
/// fails, up to three).
pub fn jwks_source(resolver: Arc<dyn Resolver>, client: reqwest::Client) -> impl KeySource {
    ResolverKeySource { resolver, client }
}

struct ResolverKeySource {
    resolver: Arc<dyn Resolver>,
    client: reqwest::Client,
}

impl KeySource for ResolverKeySource {
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(async move {
            let instances = self.resolver.resolve(IDENTITY_SERVICE).await;
            if instances.is_empty() {
                return Err("no identity instance is known".into());
            }
            let n = instances.len();
            // Start at a random instance so that many verifiers spread over identity.
            let start = rand::thread_rng().gen_range(0..n);
            let mut last: KeySourceError = "no identity instance was tried".into();
            for k in 0..n.min(MAX_ATTEMPTS) {
                let instance = &instances[(start + k) % n];
                match fetch_from(&self.client, instance).await {
                    Ok(keys) => return Ok(keys),
                    Err(err) => {
                        tracing::debug!(instance_id = %instance.instance_id, error = %err, "JWKS fetch failed.");
                        last = err;
                    }
                }
            }
            Err(last)
        })
    }
}

async fn fetch_from(
    client: &reqwest::Client,
    instance: &Instance,
) -> Result<JwkSet, KeySourceError> {
    let url = format!("http://{}{JWKS_PATH}", instance.http_addr);
    let res = client
        .get(&url)
        .timeout(FETCH_TIMEOUT)
        .send()
        .await?
        .error_for_status()?;
    if res
        .content_length()
        .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
    {
        return Err("the JWKS response is too large".into());
    }
    let body = res.bytes().await?;
    if body.len() > MAX_JWKS_BYTES {
        return Err("the JWKS response is too large".into());
    }
    Ok(serde_json::from_slice(&body)?)
}
