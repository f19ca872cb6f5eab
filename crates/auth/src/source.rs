//! Where a [`crate::Verifier`] gets its public keys.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::JwkSet;

/// The error a [`KeySource`] reports; the verifier only logs it.
pub type KeySourceError = Box<dyn std::error::Error + Send + Sync>;

/// The future returned by [`KeySource::fetch`].
pub type FetchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<JwkSet, KeySourceError>> + Send + 'a>>;

/// Produces the JWKS URL each time it is needed, so it can follow identity through service
/// discovery; `None` means identity's address is not known right now.
pub type UrlFn = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// How long one key fetch may take. A verifier waiting on keys holds up a request, so this is
/// short; the next unknown `kid` will try again.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// A JWKS larger than this is refused: ours holds a handful of 200-byte keys.
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Where a verifier gets its public keys (identity's JWKS over HTTP, or a fixed set).
pub trait KeySource: Send + Sync + 'static {
    /// The current key set.
    ///
    /// [`FetchFuture`] is only an alias: implementations may spell out
    /// `Pin<Box<dyn Future<Output = Result<JwkSet, Box<dyn Error + Send + Sync>>> + Send + '_>>`.
    fn fetch(&self) -> FetchFuture<'_>;
}

impl<T: KeySource> KeySource for Arc<T> {
    fn fetch(&self) -> FetchFuture<'_> {
        (**self).fetch()
    }
}

/// A fixed key set, for tests and for tools that are handed the keys.
#[derive(Debug, Clone, Default)]
pub struct StaticKeys(pub JwkSet);

impl KeySource for StaticKeys {
    fn fetch(&self) -> FetchFuture<'_> {
        let keys = self.0.clone();
        Box::pin(async move { Ok(keys) })
    }
}

/// Fetches identity's `/.well-known/jwks.json` over HTTP.
#[derive(Clone)]
pub struct HttpKeySource {
    client: reqwest::Client,
    url: UrlFn,
}

impl HttpKeySource {
    /// A source that asks `url` for the JWKS address on every fetch.
    pub fn new(client: reqwest::Client, url: UrlFn) -> HttpKeySource {
        HttpKeySource { client, url }
    }

    /// A source with a fixed JWKS URL.
    pub fn fixed(client: reqwest::Client, url: String) -> HttpKeySource {
        HttpKeySource::new(client, Arc::new(move || Some(url.clone())))
    }
}

impl std::fmt::Debug for HttpKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpKeySource")
            .field("url", &(self.url)())
            .finish_non_exhaustive()
    }
}

impl KeySource for HttpKeySource {
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(async move {
            let url = (self.url)().ok_or("the JWKS address is not known yet")?;
            let response = self
                .client
                .get(&url)
                .timeout(FETCH_TIMEOUT)
                .send()
                .await?
                .error_for_status()?;
            if response
                .content_length()
                .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
            {
                return Err("the JWKS response is too large".into());
            }
            let body = response.bytes().await?;
            if body.len() > MAX_JWKS_BYTES {
                return Err("the JWKS response is too large".into());
            }
            Ok(serde_json::from_slice(&body)?)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::SigningKey;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    /// Serves `body` with `status` to every connection, like a tiny identity.
    async fn serve(status: &'static str, body: String) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let body = body.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf).await;
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        format!("http://{addr}/.well-known/jwks.json")
    }

    #[tokio::test]
    async fn http_source_fetches_the_jwks() {
        let key = SigningKey::generate().unwrap();
        let set = JwkSet {
            keys: vec![key.public_jwk()],
        };
        let url = serve("200 OK", serde_json::to_string(&set).unwrap()).await;
        let source = HttpKeySource::fixed(reqwest::Client::new(), url);
        assert_eq!(source.fetch().await.unwrap(), set);
    }

    #[tokio::test]
    async fn http_source_fails_on_an_error_status() {
        let url = serve("503 Service Unavailable", "{}".into()).await;
        let source = HttpKeySource::fixed(reqwest::Client::new(), url);
        assert!(source.fetch().await.is_err());
    }

    #[tokio::test]
    async fn http_source_fails_when_identity_address_is_unknown() {
        let source = HttpKeySource::new(reqwest::Client::new(), Arc::new(|| None));
        assert!(source.fetch().await.is_err());
    }

    #[tokio::test]
    async fn http_source_gives_up_after_the_fetch_timeout() {
        // Accepts connections and never answers.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                open.push(stream);
            }
        });
        let source = HttpKeySource::fixed(reqwest::Client::new(), format!("http://{addr}/"));
        let started = std::time::Instant::now();
        assert!(source.fetch().await.is_err());
        let took = started.elapsed();
        assert!(
            took >= FETCH_TIMEOUT - Duration::from_millis(100),
            "{took:?}"
        );
        assert!(took < FETCH_TIMEOUT * 3, "{took:?}");
        hold.abort();
    }

    #[tokio::test]
    async fn static_keys_return_their_set() {
        let set = JwkSet {
            keys: vec![SigningKey::generate().unwrap().public_jwk()],
        };
        assert_eq!(StaticKeys(set.clone()).fetch().await.unwrap(), set);
    }
}
