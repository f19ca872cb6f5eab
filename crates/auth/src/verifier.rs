//! Checking access tokens: header allow-list, key lookup and refresh, signature, claims, cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::time::Instant;

use crate::source::FETCH_TIMEOUT;
use crate::{
    unix_now, AuthError, Claims, JwkSet, KeySource, AUDIENCE, ISSUER, LEEWAY_SECS, MAX_TOKEN_BYTES,
};

/// How often an unknown `kid` may make the verifier ask its source again. Anyone can send a
/// token with a made-up `kid`, so without this limit every such request would reach identity.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// While no keys are known at all nothing can be verified, so a failed fetch is retried much
/// sooner than [`REFRESH_INTERVAL`] (identity may simply not be up yet).
/// Keys older than this are fetched again on the next verification even if every `kid` is
/// known, so a key identity stopped publishing (rotated after a leak) stops being trusted.
pub const MAX_KEY_AGE: Duration = Duration::from_secs(300);

const EMPTY_RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Verified tokens remembered at most. 16k entries of a few hundred bytes is a few MiB.
pub const CACHE_CAPACITY: usize = 16 * 1024;

const LEEWAY: i64 = LEEWAY_SECS as i64;

/// Checks access tokens against identity's public keys.
///
/// One per process, shared as `Arc<Verifier>`: it holds the key set and a cache of recently
/// verified tokens, so sharing it is what makes it fast.
pub struct Verifier {
    source: Option<Box<dyn KeySource>>,
    keys: RwLock<KeyRing>,
    cache: RwLock<Cache>,
    // When the last fetch was attempted. A tokio mutex because it is held across the fetch:
    // callers that miss while a fetch is in flight queue behind it and then reuse its result
    // instead of fetching again.
    refresh: tokio::sync::Mutex<Option<Instant>>,
    /// Whether the latest key set came in successfully (from the source or `replace_keys`);
    /// decides between `UnknownKey` (bad token) and `KeysUnavailable` (our fault).
    keys_loaded: AtomicBool,
    // When the key set goes stale, in ms since `epoch`: read lock-free on every verification
    // so the hot path never touches the refresh mutex while the keys are fresh.
    stale_at_ms: AtomicU64,
    epoch: Instant,
    validation: Validation,
    cache_capacity: usize,
}

#[derive(Default)]
struct KeyRing {
    /// Bumped on every install, so a verification that started with an older key set cannot
    /// put its result into a cache that has since been cleared.
    generation: u64,
    keys: HashMap<String, Arc<DecodingKey>>,
}

#[derive(Default)]
struct Cache {
    /// The key-ring generation the entries were verified under.
    generation: u64,
    /// Keyed by SHA-256 of the token, so a 4 KiB token costs 32 bytes of key.
    entries: HashMap<[u8; 32], Claims>,
}

/// Why the fast path did not produce an answer.
enum Miss {
    Refused(AuthError),
    UnknownKid { generation: u64 },
}

impl From<AuthError> for Miss {
    fn from(e: AuthError) -> Miss {
        Miss::Refused(e)
    }
}

/// The only header fields we look at before the signature is checked.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

impl Verifier {
    /// A verifier that loads keys from `source` on first use and again (rate-limited) whenever
    /// a token names a `kid` it does not know.
    pub fn new(source: impl KeySource) -> Verifier {
        Verifier::build(Some(Box::new(source)))
    }

    /// A verifier with a fixed key set that never fetches (it has no source); see
    /// [`Verifier::replace_keys`] to change the set.
    pub fn with_keys(keys: JwkSet) -> Verifier {
        let verifier = Verifier::build(None);
        verifier.install(&keys);
        verifier
    }

    fn build(source: Option<Box<dyn KeySource>>) -> Verifier {
        let mut validation = Validation::new(Algorithm::EdDSA);
        // jsonwebtoken only checks the signature and decodes; the claim rules are ours (below),
        // so they use the caller's clock and report precise errors.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        Verifier {
            source,
            keys: RwLock::default(),
            cache: RwLock::default(),
            refresh: tokio::sync::Mutex::default(),
            keys_loaded: AtomicBool::new(false),
            stale_at_ms: AtomicU64::new(u64::MAX),
            epoch: Instant::now(),
            validation,
            cache_capacity: CACHE_CAPACITY,
        }
    }

    /// Replaces the whole key set (identity calls this after rotating) and forgets every cached
    /// verification, so tokens of removed keys stop working at once.
    pub fn replace_keys(&self, keys: JwkSet) {
        self.install(&keys);
    }

    /// The ids of the keys currently trusted, sorted; for diagnostics and readiness checks.
    pub fn key_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = read(&self.keys).keys.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Fetches the key set from the source now, ignoring the rate limit; for warming up at
    /// start. A verifier without a source has nothing to do and succeeds.
    pub async fn refresh(&self) -> Result<(), AuthError> {
        let Some(source) = &self.source else {
            return Ok(());
        };
        let mut last_attempt = self.refresh.lock().await;
        let ok = self.fetch_and_install(source.as_ref()).await;
        *last_attempt = Some(self.stamp());
        if ok {
            Ok(())
        } else {
            Err(AuthError::KeysUnavailable)
        }
    }

    /// Verifies `token` (the part after `Bearer `) and returns its claims.
    ///
    /// Fetches keys from the source when the token's `kid` is unknown, at most once per
    /// [`REFRESH_INTERVAL`] across all callers.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        self.verify_at(token, unix_now()).await
    }

    /// [`Verifier::verify`] without ever fetching keys: a token of an unknown key is refused at
    /// once. For synchronous callers.
    pub fn verify_cached_only(&self, token: &str) -> Result<Claims, AuthError> {
        match self.verify_known(token, unix_now()) {
            Ok(claims) => Ok(claims),
            Err(Miss::Refused(e)) => Err(e),
            Err(Miss::UnknownKid { .. }) => Err(self.unknown_kid_error()),
        }
    }

    /// [`Verifier::verify`] as if the clock read `now_unix`.
    pub(crate) async fn verify_at(&self, token: &str, now_unix: i64) -> Result<Claims, AuthError> {
        self.refresh_if_stale().await;
        let generation = match self.verify_known(token, now_unix) {
            Ok(claims) => return Ok(claims),
            Err(Miss::Refused(e)) => return Err(e),
            Err(Miss::UnknownKid { generation }) => generation,
        };
        let Some(source) = &self.source else {
            return Err(AuthError::UnknownKey);
        };
        self.refresh_after_miss(source.as_ref(), generation).await;
        match self.verify_known(token, now_unix) {
            Ok(claims) => Ok(claims),
            Err(Miss::Refused(e)) => Err(e),
            Err(Miss::UnknownKid { .. }) => Err(self.unknown_kid_error()),
        }
    }

    /// With no keys at all because the source could not provide any, the fault is ours, not
    /// the token's.
    fn unknown_kid_error(&self) -> AuthError {
        let no_keys = read(&self.keys).keys.is_empty();
        if no_keys && self.source.is_some() && !self.keys_loaded.load(Ordering::Acquire) {
            AuthError::KeysUnavailable
        } else {
            AuthError::UnknownKey
        }
    }

    /// Everything that needs no I/O: size, cache, header, known key, signature, claims.
    fn verify_known(&self, token: &str, now_unix: i64) -> Result<Claims, Miss> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TooLarge.into());
        }
        let digest = token_digest(token);
        if let Some(claims) = read(&self.cache).entries.get(&digest) {
            // The signature and the fixed claims were checked when it was cached; time moves on.
            check_times(claims, now_unix)?;
            return Ok(claims.clone());
        }
        let kid = parse_header(token)?;
        let (generation, key) = {
            let ring = read(&self.keys);
            (ring.generation, ring.keys.get(&kid).cloned())
        };
        let Some(key) = key else {
            return Err(Miss::UnknownKid { generation });
        };
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &self.validation)
            .map_err(|e| map_jwt_error(e.kind()))?
            .claims;
        check_claims(&claims, now_unix)?;
        self.remember(digest, &claims, generation, now_unix);
        Ok(claims)
    }

    /// Refetches keys older than [`MAX_KEY_AGE`]. Only the caller that finds the refresh lock
    /// free does it; everyone else carries on with the current keys. A failed fetch keeps them.
    async fn refresh_if_stale(&self) {
        let Some(source) = &self.source else { return };
        if self.ms_since_epoch() < self.stale_at_ms.load(Ordering::Relaxed) {
            return;
        }
        let Ok(mut last_attempt) = self.refresh.try_lock() else {
            return;
        };
        if !last_attempt.is_some_and(|at| at.elapsed() >= MAX_KEY_AGE) {
            return;
        }
        self.fetch_and_install(source.as_ref()).await;
        *last_attempt = Some(self.stamp());
    }

    /// Records a fetch attempt now: the keys are fresh for another [`MAX_KEY_AGE`].
    fn stamp(&self) -> Instant {
        let now = Instant::now();
        let age = u64::try_from(MAX_KEY_AGE.as_millis()).unwrap_or(u64::MAX);
        self.stale_at_ms
            .store(self.ms_since_epoch().saturating_add(age), Ordering::Relaxed);
        now
    }

    fn ms_since_epoch(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Fetches after a `kid` miss unless the rate limit says no or another caller already
    /// installed a newer key set.
    async fn refresh_after_miss(&self, source: &dyn KeySource, seen_generation: u64) {
        let mut last_attempt = self.refresh.lock().await;
        if read(&self.keys).generation != seen_generation {
            return;
        }
        let interval = if read(&self.keys).keys.is_empty() {
            EMPTY_RETRY_INTERVAL
        } else {
            REFRESH_INTERVAL
        };
        if last_attempt.is_some_and(|at| at.elapsed() < interval) {
            return;
        }
        self.fetch_and_install(source).await;
        // Stamped after the fetch: a caller cancelled mid-fetch must not block the next one.
        *last_attempt = Some(self.stamp());
    }

    async fn fetch_and_install(&self, source: &dyn KeySource) -> bool {
        // The source's own timeout is not trusted: a hung fetch holds the refresh lock.
        match tokio::time::timeout(FETCH_TIMEOUT, source.fetch()).await {
            Ok(Ok(set)) => {
                self.install(&set);
                true
            }
            Ok(Err(error)) => {
                self.keys_loaded.store(false, Ordering::Release);
                tracing::warn!(%error, "Could not fetch the token signing keys.");
                false
            }
            Err(_) => {
                self.keys_loaded.store(false, Ordering::Release);
                tracing::warn!(
                    timeout_ms = FETCH_TIMEOUT.as_millis() as u64,
                    "Fetching the token signing keys timed out."
                );
                false
            }
        }
    }

    fn install(&self, set: &JwkSet) {
        let mut keys: HashMap<String, Arc<DecodingKey>> = HashMap::new();
        let mut raw: HashMap<&str, [u8; 32]> = HashMap::new();
        let mut ambiguous: Vec<&str> = Vec::new();
        for jwk in &set.keys {
            match jwk.ed25519_public_key() {
                Ok(public) => match raw.get(jwk.kid.as_str()) {
                    Some(seen) if *seen != public => ambiguous.push(&jwk.kid),
                    Some(_) => {}
                    None => {
                        raw.insert(&jwk.kid, public);
                        keys.insert(jwk.kid.clone(), Arc::new(DecodingKey::from_ed_der(&public)));
                    }
                },
                Err(error) => tracing::warn!(%error, "Ignoring an unusable signing key."),
            }
        }
        // Two different keys under one kid: trusting either would be a guess.
        for kid in ambiguous {
            tracing::warn!(kid, "Ignoring a kid published with two different keys.");
            keys.remove(kid);
        }
        let count = keys.len();
        self.keys_loaded.store(true, Ordering::Release);
        let generation = {
            let mut ring = write(&self.keys);
            ring.generation += 1;
            ring.keys = keys;
            ring.generation
        };
        {
            let mut cache = write(&self.cache);
            cache.entries.clear();
            cache.generation = cache.generation.max(generation);
        }
        tracing::info!(keys = count, "Installed the token signing keys.");
    }

    fn remember(&self, digest: [u8; 32], claims: &Claims, generation: u64, now_unix: i64) {
        let mut cache = write(&self.cache);
        if cache.generation != generation {
            return;
        }
        if cache.entries.len() >= self.cache_capacity {
            // Dropping the expired entries is usually enough; if it frees less than a quarter,
            // start over, so a sweep costs O(1) per insert on average.
            cache
                .entries
                .retain(|_, c| check_times(c, now_unix).is_ok());
            if cache.entries.len() > self.cache_capacity / 4 * 3 {
                cache.entries.clear();
            }
        }
        cache.entries.insert(digest, claims.clone());
    }

    #[cfg(test)]
    fn with_cache_capacity(mut self, capacity: usize) -> Verifier {
        self.cache_capacity = capacity;
        self
    }

    #[cfg(test)]
    fn cache_len(&self) -> usize {
        read(&self.cache).entries.len()
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("kids", &self.key_ids())
            .field("has_source", &self.source.is_some())
            .finish_non_exhaustive()
    }
}

/// The `kid` of a token whose header passes the allow-list.
fn parse_header(token: &str) -> Result<String, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed)?;
    let header: RawHeader = serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)?;
    // An allow-list of exactly one, compared byte for byte: `none` in any case, HMAC (which
    // would turn our public key into a shared secret) and everything else is refused here,
    // before any key is looked at.
    if header.alg != "EdDSA" {
        return Err(AuthError::AlgorithmNotAllowed);
    }
    // RFC 7515: extensions listed in `crit` must be understood, and we understand none.
    if header.crit.is_some() {
        return Err(AuthError::Malformed);
    }
    match header.kid {
        Some(kid) if !kid.is_empty() => Ok(kid),
        _ => Err(AuthError::Malformed),
    }
}

fn check_times(claims: &Claims, now_unix: i64) -> Result<(), AuthError> {
    if now_unix >= claims.exp.saturating_add(LEEWAY) {
        return Err(AuthError::Expired);
    }
    if now_unix.saturating_add(LEEWAY) < claims.nbf {
        return Err(AuthError::NotYetValid);
    }
    Ok(())
}

fn check_claims(claims: &Claims, now_unix: i64) -> Result<(), AuthError> {
    check_times(claims, now_unix)?;
    if claims.iss != ISSUER {
        return Err(AuthError::WrongIssuer);
    }
    if claims.aud != AUDIENCE {
        return Err(AuthError::WrongAudience);
    }
    if claims.sub.is_empty() {
        return Err(AuthError::Malformed);
    }
    Ok(())
}

fn map_jwt_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::InvalidAlgorithmName => AuthError::AlgorithmNotAllowed,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        _ => AuthError::Malformed,
    }
}

fn token_digest(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref());
    out
}

// A panic while holding one of these locks leaves plain data behind (a map being replaced
// or cleared as a whole), so carrying on is safe and better than failing every request.
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::source::FetchFuture;
    use crate::{SigningKey, StaticKeys};
    use jsonwebtoken::{EncodingKey, Header};
    use std::sync::atomic::AtomicUsize;

    const NOW: i64 = 1_700_000_000;

    fn key() -> SigningKey {
        SigningKey::generate().unwrap()
    }

    fn set(keys: &[&SigningKey]) -> JwkSet {
        JwkSet {
            keys: keys.iter().map(|k| k.public_jwk()).collect(),
        }
    }

    fn claims_at(now: i64) -> Claims {
        Claims::new_access("user-1", vec!["customer".into()], now)
    }

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn unb64(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    /// Signs any JSON payload with `key`, for claims `Claims` cannot express.
    fn sign_json(key: &SigningKey, payload: &serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid().into());
        jsonwebtoken::encode(&header, payload, key.encoding_key()).unwrap()
    }

    fn parts(token: &str) -> (String, String, String) {
        let v: Vec<&str> = token.split('.').collect();
        assert_eq!(v.len(), 3);
        (v[0].into(), v[1].into(), v[2].into())
    }

    /// A source whose keys the test changes, that counts fetches and can fail or be slow.
    #[derive(Default)]
    struct CountingSource {
        fetches: AtomicUsize,
        keys: std::sync::Mutex<JwkSet>,
        fail: AtomicBool,
        delay: Option<Duration>,
    }

    impl CountingSource {
        fn with(keys: JwkSet) -> Arc<CountingSource> {
            Arc::new(CountingSource {
                keys: std::sync::Mutex::new(keys),
                ..CountingSource::default()
            })
        }

        fn fetches(&self) -> usize {
            self.fetches.load(Ordering::SeqCst)
        }

        fn set_keys(&self, keys: JwkSet) {
            *self.keys.lock().unwrap() = keys;
        }
    }

    impl KeySource for CountingSource {
        fn fetch(&self) -> FetchFuture<'_> {
            Box::pin(async move {
                self.fetches.fetch_add(1, Ordering::SeqCst);
                if let Some(delay) = self.delay {
                    tokio::time::sleep(delay).await;
                }
                if self.fail.load(Ordering::SeqCst) {
                    return Err("identity is down".into());
                }
                Ok(self.keys.lock().unwrap().clone())
            })
        }
    }

    #[tokio::test]
    async fn a_valid_token_is_accepted() {
        let k = key();
        let verifier = Verifier::with_keys(set(&[&k]));
        let claims = Claims::new_access("user-1", vec!["customer".into()], unix_now());
        let token = k.sign(&claims).unwrap();
        assert_eq!(verifier.verify(&token).await.unwrap(), claims);
        assert_eq!(verifier.verify_cached_only(&token).unwrap(), claims);
    }

    #[test]
    fn a_signed_token_has_the_eddsa_jwt_header_with_its_kid() {
        let k = key();
        let token = k.sign(&claims_at(NOW)).unwrap();
        let header: serde_json::Value = serde_json::from_slice(&unb64(&parts(&token).0)).unwrap();
        assert_eq!(
            header,
            serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": k.kid()})
        );
    }

    #[tokio::test]
    async fn a_token_expired_beyond_the_leeway_is_refused() {
        let k = key();
        let verifier = Verifier::with_keys(set(&[&k]));
        let claims = claims_at(NOW);
        let token = k.sign(&claims).unwrap();
        let at = claims.exp + LEEWAY;
        assert_eq!(
            verifier.verify_at(&token, at).await,
            Err(AuthError::Expired)
        );
        assert_eq!(
            verifier.verify_at(&token, at + 3600).await,
            Err(AuthError::Expired)
        );
    }

    #[tokio::test]
    async fn a_token_expired_within_the_leeway_is_accepted() {
        let k = key();
        let verifier = Verifier::with_keys(set(&[&k]));
        let claims = claims_at(NOW);
        let token = k.sign(&claims).unwrap();
        let at = claims.exp + LEEWAY - 1;
        assert_eq!(verifier.verify_at(&token, at).await.unwrap(), claims);
    }

    #[tokio::test]
    async fn a_token_not_yet_valid_beyond_the_leeway_is_refused() {
        let k = key();
        let verifier = Verifier::with_keys(set(&[&k]));
        let token = k.sign(&claims_at(NOW)).unwrap();
        assert_eq!(
            verifier.verify_at(&token, NOW - LEEWAY - 1).await,
            Err(AuthError::NotYetValid)
        );
        // Within the leeway a slightly fast identity clock is forgiven.
        assert!(verifier.verify_at(&token, NOW - LEEWAY).await.is_ok());
    }

    #[tokio::test]
    async fn a_token_from_another_issuer_is_refused() {
        let k = key();
        let verifier = Verifier::with_keys(set(&[&k]));
        let mut claims = claims_at(NOW);
        claims.iss = "evil-identity".into();
        let token = k.sign(&claims).unwrap();
        assert_eq!(
            verifier.verify_at(&token, NOW).await,
            Err(AuthError::WrongIssuer)
        );
    }

    #[tokio::test]
    async fn a_token_for_another_audience_is_refused() {
        let k = key();
        let verifier = Verifier::with_keys(set(&[&k]));
        let mut claims = claims_at(NOW);
        claims.aud = "someone-else".into();
        let token = k.sign(&claims).unwrap();
        assert_eq!(
            verifier.verify_at(&token, NOW).await,
            Err(AuthError::WrongAudience)
        );
        // An audience array is not what we issue.
        let mut json = serde_json::to_value(claims_at(NOW)).unwrap();
        json["aud"] = serde_json::json!([AUDIENCE]);
        let token = sign_json(&k, &json);
        assert_eq!(
            verifier.verify_at(&token, NOW).await,
            Err(AuthError::Malformed)
        );
    }

    #[tokio::test]
    async fn a_token_with_an_empty_subject_is_refused() {
        let k = key();
        let verifier = Verifier::with_keys(set(&[&k]));
        let token = k.sign(&Claims::new_access("", vec![], NOW)).unwrap();
        assert_eq!(
            verifier.verify_at(&token, NOW).await,
            Err(AuthError::Malformed)
        );
    }

    #[tokio::test]
    async fn a_token_without_exp_or_nbf_is_refused() {
        let k = key();
        let verifier = Verifier::with_keys(set(&[&k]));
        for missing in ["exp", "nbf", "iss", "aud", "sub"] {
            let mut json = serde_json::to_value(claims_at(NOW)).unwrap();
            json.as_object_mut().unwrap().remove(missing);
            let token = sign_json(&k, &json);
            assert_eq!(
                verifier.verify_at(&token, NOW).await,
                Err(AuthError::Malformed),
                "without {missing}"
            );
        }
    }

    #[tokio::test]
    async fn a_token_without_kid_or_with_crit_is_refused() {
        let k = key();
        let verifier = Verifier::with_keys(set(&[&k]));
        let claims = claims_at(NOW);
        let no_kid =
            jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, k.encoding_key())
                .unwrap();
        assert_eq!(
            verifier.verify_at(&no_kid, NOW).await,
            Err(AuthError::Malformed)
        );

        let payload = b64(serde_json::to_vec(&claims).unwrap());
        let header = b64(format!(
            r#"{{"alg":"EdDSA","kid":"{}","crit":["exp"],"exp":1}}"#,
            k.kid()
        ));
        let signing_input = format!("{header}.{payload}");
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(k.pkcs8_der()).unwrap();
        let sig = b64(pair.sign(signing_input.as_bytes()));
        assert_eq!(
            verifier
                .verify_at(&format!("{signing_input}.{sig}"), NOW)
                .await,
            Err(AuthError::Malformed)
        );
    }

    #[tokio::test]
    async fn garbage_is_refused_as_malformed() {
        let k = key();
        let verifier = Verifier::with_keys(set(&[&k]));
        let token = k.sign(&claims_at(NOW)).unwrap();
        let (h, p, s) = parts(&token);
        for bad in [
            String::new(),
            ".".into(),
            "..".into(),
            "a.b".into(),
            "a.b.c".into(),
            format!("{h}.{p}"),
            format!("{h}.{p}.{s}.{s}"),
            format!("{h}.{p}.!!!"),
            format!("{h}.!!!.{s}"),
            format!("{h}=.{p}.{s}"),
            format!(" {token}"),
            format!("{}.{p}.{s}", b64("not json")),
            format!("{}.{p}.{s}", b64(r#"{"alg":"EdDSA","kid":"x","kid":"y"}"#)),
        ] {
            let got = verifier.verify_at(&bad, NOW).await;
            assert!(
                matches!(got, Err(AuthError::Malformed | AuthError::BadSignature)),
                "{bad:?} gave {got:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_token_signed_by_an_unknown_key_is_refused_with_a_static_source() {
        let known = key();
        let stranger = key();
        let token = stranger.sign(&claims_at(NOW)).unwrap();

        let fixed = Verifier::with_keys(set(&[&known]));
        assert_eq!(
            fixed.verify_at(&token, NOW).await,
            Err(AuthError::UnknownKey)
        );

        let from_source = Verifier::new(StaticKeys(set(&[&known])));
        assert_eq!(
            from_source.verify_at(&token, NOW).await,
            Err(AuthError::UnknownKey)
        );
    }

    #[tokio::test]
    async fn a_token_signed_by_another_key_under_a_known_kid_is_refused() {
        let known = key();
        let impostor = SigningKey::from_pkcs8(known.kid().into(), key().pkcs8_der()).unwrap();
        let verifier = Verifier::with_keys(set(&[&known]));
        let token = impostor.sign(&claims_at(NOW)).unwrap();
        assert_eq!(
            verifier.verify_at(&token, NOW).await,
            Err(AuthError::BadSignature)
        );
    }

    #[tokio::test]
    async fn the_first_use_without_keys_fetches_immediately() {
        let k = key();
        let source = CountingSource::with(set(&[&k]));
        let verifier = Verifier::new(Arc::clone(&source));
        assert_eq!(source.fetches(), 0);
        let token = k.sign(&claims_at(NOW)).unwrap();
        assert!(verifier.verify_at(&token, NOW).await.is_ok());
        assert_eq!(source.fetches(), 1);
        assert!(verifier.verify_at(&token, NOW).await.is_ok());
        assert_eq!(source.fetches(), 1);
    }

    #[tokio::test]
    async fn an_unknown_kid_triggers_exactly_one_refresh_and_then_succeeds() {
        let old = key();
        let new = key();
        let source = CountingSource::with(set(&[&old]));
        let verifier = Verifier::new(Arc::clone(&source));
        verifier.replace_keys(set(&[&old]));

        // Identity rotates: its JWKS now has the new key, this verifier does not yet.
        source.set_keys(set(&[&old, &new]));
        let token = new.sign(&claims_at(NOW)).unwrap();
        assert_eq!(verifier.verify_at(&token, NOW).await.unwrap().sub, "user-1");
        assert_eq!(source.fetches(), 1);
        assert!(verifier.verify_at(&token, NOW).await.is_ok());
        let other = new.sign(&claims_at(NOW)).unwrap();
        assert!(verifier.verify_at(&other, NOW).await.is_ok());
        assert_eq!(source.fetches(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_are_rate_limited_to_one_per_thirty_seconds() {
        let k = key();
        let source = CountingSource::with(set(&[&k]));
        let verifier = Verifier::new(Arc::clone(&source));
        let first = key().sign(&claims_at(NOW)).unwrap();
        let second = key().sign(&claims_at(NOW)).unwrap();

        assert_eq!(
            verifier.verify_at(&first, NOW).await,
            Err(AuthError::UnknownKey)
        );
        assert_eq!(source.fetches(), 1);

        tokio::time::advance(REFRESH_INTERVAL - Duration::from_secs(1)).await;
        assert_eq!(
            verifier.verify_at(&second, NOW).await,
            Err(AuthError::UnknownKey)
        );
        assert_eq!(
            verifier.verify_cached_only(&second),
            Err(AuthError::UnknownKey)
        );
        assert_eq!(source.fetches(), 1, "refetched within 30 s");

        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            verifier.verify_at(&second, NOW).await,
            Err(AuthError::UnknownKey)
        );
        assert_eq!(source.fetches(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_identity_stopped_publishing_stops_being_trusted_after_the_max_age() {
        let old = key();
        let source = CountingSource::with(set(&[&old]));
        let verifier = Verifier::new(Arc::clone(&source));
        let token = old.sign(&claims_at(NOW)).unwrap();
        assert!(verifier.verify_at(&token, NOW).await.is_ok());
        assert_eq!(source.fetches(), 1);

        // Identity rotates the leaked key out; every kid the verifier knows is still "known".
        source.set_keys(set(&[&key()]));
        tokio::time::advance(MAX_KEY_AGE - Duration::from_secs(1)).await;
        assert!(
            verifier.verify_at(&token, NOW).await.is_ok(),
            "within the max age"
        );
        assert_eq!(source.fetches(), 1);

        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            verifier.verify_at(&token, NOW).await,
            Err(AuthError::UnknownKey)
        );
        assert_eq!(source.fetches(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_with_an_unknown_kid_share_one_fetch() {
        let k = key();
        let source = Arc::new(CountingSource {
            keys: std::sync::Mutex::new(set(&[&k])),
            delay: Some(Duration::from_millis(500)),
            ..CountingSource::default()
        });
        let verifier = Arc::new(Verifier::new(Arc::clone(&source)));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let verifier = Arc::clone(&verifier);
            let token = k.sign(&claims_at(NOW)).unwrap();
            tasks.push(tokio::spawn(async move {
                verifier.verify_at(&token, NOW).await
            }));
        }
        for task in tasks {
            assert!(task.await.unwrap().is_ok());
        }
        assert_eq!(source.fetches(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_source_with_no_keys_makes_keys_unavailable_and_is_retried_soon() {
        let k = key();
        let source = CountingSource::with(set(&[&k]));
        source.fail.store(true, Ordering::SeqCst);
        let verifier = Verifier::new(Arc::clone(&source));
        let token = k.sign(&claims_at(NOW)).unwrap();

        let err = verifier.verify_at(&token, NOW).await.unwrap_err();
        assert_eq!(err, AuthError::KeysUnavailable);
        assert!(!err.is_client_error());
        assert_eq!(
            verifier.verify_cached_only(&token),
            Err(AuthError::KeysUnavailable)
        );
        assert_eq!(verifier.refresh().await, Err(AuthError::KeysUnavailable));

        // Identity comes up; the empty verifier does not wait the full 30 s to find out.
        source.fail.store(false, Ordering::SeqCst);
        tokio::time::advance(EMPTY_RETRY_INTERVAL + Duration::from_millis(1)).await;
        assert!(verifier.verify_at(&token, NOW).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_source_times_out() {
        struct Hung;
        impl KeySource for Hung {
            fn fetch(&self) -> FetchFuture<'_> {
                Box::pin(std::future::pending())
            }
        }
        let verifier = Verifier::new(Hung);
        let token = key().sign(&claims_at(NOW)).unwrap();
        assert_eq!(
            verifier.verify_at(&token, NOW).await,
            Err(AuthError::KeysUnavailable)
        );
    }

    #[tokio::test]
    async fn a_failing_source_with_known_keys_refuses_only_unknown_kids() {
        let k = key();
        let source = CountingSource::with(JwkSet::default());
        source.fail.store(true, Ordering::SeqCst);
        let verifier = Verifier::new(Arc::clone(&source));
        verifier.replace_keys(set(&[&k]));
        assert!(verifier
            .verify_at(&k.sign(&claims_at(NOW)).unwrap(), NOW)
            .await
            .is_ok());
        let stranger = key().sign(&claims_at(NOW)).unwrap();
        assert_eq!(
            verifier.verify_at(&stranger, NOW).await,
            Err(AuthError::UnknownKey)
        );
    }

    #[tokio::test]
    async fn a_tampered_payload_is_refused() {
        let k = key();
        let verifier = Verifier::with_keys(set(&[&k]));
        let token = k.sign(&claims_at(NOW)).unwrap();
        assert!(verifier.verify_at(&token, NOW).await.is_ok());
        let (h, p, s) = parts(&token);

        let mut admin: Claims = serde_json::from_slice(&unb64(&p)).unwrap();
        admin.roles.push("admin".into());
        let mut other_user: Claims = serde_json::from_slice(&unb64(&p)).unwrap();
        other_user.sub = "user-2".into();
        let mut longer: Claims = serde_json::from_slice(&unb64(&p)).unwrap();
        longer.exp += 3600;
        for claims in [admin, other_user, longer] {
            let forged = format!("{h}.{}.{s}", b64(serde_json::to_vec(&claims).unwrap()));
            assert_eq!(
                verifier.verify_at(&forged, NOW).await,
                Err(AuthError::BadSignature),
                "{claims:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_tampered_signature_is_refused() {
        let k = key();
        let verifier = Verifier::with_keys(set(&[&k]));
        let token = k.sign(&claims_at(NOW)).unwrap();
        let (h, p, s) = parts(&token);
        let sig = unb64(&s);
        for i in [0, 31, 32, 63] {
            let mut bad = sig.clone();
            bad[i] ^= 0x01;
            let forged = format!("{h}.{p}.{}", b64(&bad));
            assert_eq!(
                verifier.verify_at(&forged, NOW).await,
                Err(AuthError::BadSignature)
            );
        }
        for bad in [
            format!("{h}.{p}."),
            format!("{h}.{p}.{}", b64(&sig[..32])),
            format!("{h}.{p}.{}", b64([0u8; 64])),
        ] {
            assert_eq!(
                verifier.verify_at(&bad, NOW).await,
                Err(AuthError::BadSignature)
            );
        }
    }

    #[tokio::test]
    async fn alg_none_in_every_spelling_is_refused() {
        let k = key();
        let verifier = Verifier::with_keys(set(&[&k]));
        let payload = b64(serde_json::to_vec(&claims_at(NOW)).unwrap());
        let real_sig = parts(&k.sign(&claims_at(NOW)).unwrap()).2;
        for alg in ["none", "None", "NONE", "nOnE", "NoNe", "none "] {
            let headers = [
                format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{}"}}"#, k.kid()),
                format!(r#"{{"alg":"{alg}"}}"#),
            ];
            for header in headers {
                let header = b64(header);
                for sig in ["", "AAAA", "garbage!", real_sig.as_str()] {
                    let token = format!("{header}.{payload}.{sig}");
                    assert_eq!(
                        verifier.verify_at(&token, NOW).await,
                        Err(AuthError::AlgorithmNotAllowed),
                        "{token}"
                    );
                    assert_eq!(
                        verifier.verify_cached_only(&token),
                        Err(AuthError::AlgorithmNotAllowed)
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn other_algorithms_are_refused() {
        let k = key();
        let verifier = Verifier::with_keys(set(&[&k]));
        let payload = b64(serde_json::to_vec(&claims_at(NOW)).unwrap());
        for alg in [
            "HS256", "HS384", "HS512", "RS256", "RS512", "PS256", "ES256", "ES384", "eddsa",
            "EDDSA", "Ed25519", "EdDSA ", "",
        ] {
            let header = b64(format!(r#"{{"alg":"{alg}","kid":"{}"}}"#, k.kid()));
            let token = format!("{header}.{payload}.{}", b64([7u8; 64]));
            assert_eq!(
                verifier.verify_at(&token, NOW).await,
                Err(AuthError::AlgorithmNotAllowed),
                "{alg}"
            );
        }
        for header in [
            format!(r#"{{"kid":"{}"}}"#, k.kid()),
            format!(r#"{{"alg":null,"kid":"{}"}}"#, k.kid()),
            format!(r#"{{"alg":["EdDSA"],"kid":"{}"}}"#, k.kid()),
        ] {
            let token = format!("{}.{payload}.{}", b64(header), b64([7u8; 64]));
            assert!(verifier.verify_at(&token, NOW).await.is_err());
        }
    }

    #[tokio::test]
    async fn hs256_signed_with_the_public_key_is_refused() {
        let k = key();
        let verifier = Verifier::with_keys(set(&[&k]));
        let claims = claims_at(NOW);
        let public = k.public_key_bytes();
        let x = k.public_jwk().x;
        let secrets: [&[u8]; 2] = [&public, x.as_bytes()];
        for secret in secrets {
            for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
                let mut header = Header::new(alg);
                header.kid = Some(k.kid().into());
                let token =
                    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret))
                        .unwrap();
                assert_eq!(
                    verifier.verify_at(&token, NOW).await,
                    Err(AuthError::AlgorithmNotAllowed)
                );
            }

            // The same forgery with a header that lies about the algorithm.
            let header = b64(format!(r#"{{"alg":"EdDSA","kid":"{}"}}"#, k.kid()));
            let signing_input = format!("{header}.{}", b64(serde_json::to_vec(&claims).unwrap()));
            let mac = ring::hmac::sign(
                &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
                signing_input.as_bytes(),
            );
            let token = format!("{signing_input}.{}", b64(mac.as_ref()));
            assert_eq!(
                verifier.verify_at(&token, NOW).await,
                Err(AuthError::BadSignature)
            );
        }
    }

    #[tokio::test]
    async fn an_oversized_token_is_refused_before_decoding() {
        let k = key();
        let verifier = Verifier::with_keys(set(&[&k]));
        assert_eq!(
            verifier
                .verify_at(&"a".repeat(MAX_TOKEN_BYTES + 1), NOW)
                .await,
            Err(AuthError::TooLarge)
        );
        // Even a genuinely signed one.
        let claims = Claims::new_access("user-1", vec!["x".repeat(MAX_TOKEN_BYTES)], NOW);
        let token = k.sign(&claims).unwrap();
        assert!(token.len() > MAX_TOKEN_BYTES);
        assert_eq!(
            verifier.verify_at(&token, NOW).await,
            Err(AuthError::TooLarge)
        );
        assert_eq!(
            verifier.verify_cached_only(&token),
            Err(AuthError::TooLarge)
        );
        assert_ne!(
            verifier.verify_at(&"a".repeat(MAX_TOKEN_BYTES), NOW).await,
            Err(AuthError::TooLarge)
        );
    }

    #[tokio::test]
    async fn a_cache_hit_returns_the_same_claims() {
        let k = key();
        let verifier = Verifier::with_keys(set(&[&k]));
        let token = k.sign(&claims_at(NOW)).unwrap();
        let first = verifier.verify_at(&token, NOW).await.unwrap();
        assert_eq!(verifier.cache_len(), 1);
        let second = verifier.verify_at(&token, NOW + 1).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(verifier.cache_len(), 1);

        // A tampered copy is a different string, so it cannot ride on the cached result.
        let (h, p, s) = parts(&token);
        let mut sig = unb64(&s);
        sig[5] ^= 0x80;
        let forged = format!("{h}.{p}.{}", b64(&sig));
        assert_eq!(
            verifier.verify_at(&forged, NOW).await,
            Err(AuthError::BadSignature)
        );
    }

    #[tokio::test]
    async fn a_cached_token_is_refused_once_expired() {
        let k = key();
        let verifier = Verifier::with_keys(set(&[&k]));
        let claims = claims_at(NOW);
        let token = k.sign(&claims).unwrap();
        assert!(verifier.verify_at(&token, NOW).await.is_ok());
        assert_eq!(verifier.cache_len(), 1);
        assert!(verifier
            .verify_at(&token, claims.exp + LEEWAY - 1)
            .await
            .is_ok());
        assert_eq!(
            verifier.verify_at(&token, claims.exp + LEEWAY).await,
            Err(AuthError::Expired)
        );
        assert_eq!(
            verifier.verify_at(&token, NOW - LEEWAY - 1).await,
            Err(AuthError::NotYetValid)
        );
    }

    #[tokio::test]
    async fn replacing_the_keys_clears_the_cache_so_removed_keys_stop_working() {
        let old = key();
        let new = key();
        let verifier = Verifier::with_keys(set(&[&old]));
        let token = old.sign(&claims_at(NOW)).unwrap();
        assert!(verifier.verify_at(&token, NOW).await.is_ok());
        assert_eq!(verifier.cache_len(), 1);

        verifier.replace_keys(set(&[&new]));
        assert_eq!(verifier.cache_len(), 0);
        assert_eq!(verifier.key_ids(), vec![new.kid().to_owned()]);
        assert_eq!(
            verifier.verify_at(&token, NOW).await,
            Err(AuthError::UnknownKey)
        );
        assert!(verifier
            .verify_at(&new.sign(&claims_at(NOW)).unwrap(), NOW)
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn the_cache_stays_bounded() {
        let k = key();
        let verifier = Verifier::with_keys(set(&[&k])).with_cache_capacity(8);
        for i in 0..50 {
            let token = k
                .sign(&Claims::new_access(&format!("user-{i}"), vec![], NOW))
                .unwrap();
            assert!(verifier.verify_at(&token, NOW).await.is_ok());
            assert!(verifier.cache_len() <= 8, "{}", verifier.cache_len());
        }
        assert!(verifier.cache_len() > 0);
    }

    #[tokio::test]
    async fn unusable_or_ambiguous_published_keys_are_ignored() {
        let good = key();
        let twin = SigningKey::from_pkcs8(good.kid().into(), key().pkcs8_der()).unwrap();
        let plain = key();
        let mut hmac = plain.public_jwk();
        hmac.kid = "hmac".into();
        hmac.kty = "oct".into();
        hmac.alg = "HS256".into();
        let verifier = Verifier::with_keys(JwkSet {
            keys: vec![
                good.public_jwk(),
                twin.public_jwk(),
                plain.public_jwk(),
                hmac,
            ],
        });
        assert_eq!(verifier.key_ids(), vec![plain.kid().to_owned()]);
        assert_eq!(
            verifier
                .verify_at(&good.sign(&claims_at(NOW)).unwrap(), NOW)
                .await,
            Err(AuthError::UnknownKey)
        );
    }

    #[test]
    fn the_verify_future_can_cross_threads() {
        fn assert_send<T: Send>(_: &T) {}
        fn assert_sync<T: Send + Sync>() {}
        let verifier = Verifier::with_keys(JwkSet::default());
        let future = verifier.verify("x");
        assert_send(&future);
        assert_sync::<Verifier>();
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn verification_never_panics_on_arbitrary_input(s in ".{0,600}") {
                let verifier = Verifier::with_keys(JwkSet::default());
                prop_assert!(verifier.verify_cached_only(&s).is_err());
            }

            #[test]
            fn verification_never_panics_on_arbitrary_three_part_tokens(
                h in proptest::collection::vec(any::<u8>(), 0..80),
                p in proptest::collection::vec(any::<u8>(), 0..80),
                s in "[A-Za-z0-9_-]{0,90}",
            ) {
                let verifier = Verifier::with_keys(JwkSet::default());
                let token = format!("{}.{}.{s}", b64(h), b64(p));
                prop_assert!(verifier.verify_cached_only(&token).is_err());
            }
        }
    }
}
