//! Access tokens for Bazaar: identity signs them, the gateway and every service verify them.
//!
//! A token is a JWT signed with Ed25519 (`alg: EdDSA`) by a [`SigningKey`] that only identity
//! holds; everyone else builds a [`Verifier`] over identity's public keys (its JWKS, fetched by
//! a [`KeySource`]) and calls [`Verifier::verify`] on the bearer token of each request. The
//! verifier accepts `EdDSA` and nothing else, checks issuer, audience and lifetime, refetches
//! keys (rate-limited) when it meets a new `kid`, and caches recent results so that the
//! gateway does not pay for a signature check on every request.
//!
//! ```
//! use bazaar_auth::{bearer_token, unix_now, Claims, JwkSet, SigningKey, Verifier};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // Identity:
//! let key = SigningKey::generate()?;
//! let claims = Claims::new_access("user-1", vec!["customer".into()], unix_now());
//! let token = key.sign(&claims)?;
//!
//! // A service (in production: `Verifier::new(HttpKeySource::fixed(client, jwks_url))`):
//! let verifier = Verifier::with_keys(JwkSet { keys: vec![key.public_jwk()] });
//! let header = format!("Bearer {token}");
//! let token = bearer_token(&header).ok_or(bazaar_auth::AuthError::Malformed)?;
//! assert_eq!(verifier.verify(token).await?.sub, "user-1");
//! # Ok::<(), bazaar_auth::AuthError>(())
//! # }).unwrap();
//! ```

#![forbid(unsafe_code)]

mod claims;
mod error;
mod keys;
mod source;
mod verifier;

pub use claims::Claims;
pub use error::AuthError;
pub use keys::{Jwk, JwkSet, SigningKey};
pub use source::{
    FetchFuture, HttpKeySource, KeySource, KeySourceError, StaticKeys, UrlFn, FETCH_TIMEOUT,
};
pub use verifier::{Verifier, CACHE_CAPACITY, REFRESH_INTERVAL};

/// The `iss` of every access token.
pub const ISSUER: &str = "bazaar-identity";

/// The `aud` of every access token.
pub const AUDIENCE: &str = "bazaar";

/// Longer bearer tokens are rejected before any parsing. Ours are about 400 bytes; the limit
/// keeps decoding and hashing cheap whatever a client sends.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Clock skew accepted on `exp` and `nbf`, between identity and the verifying host.
pub const LEEWAY_SECS: u64 = 30;

/// Lifetime of an access token: 15 minutes.
pub const ACCESS_TOKEN_TTL_SECS: i64 = 900;

/// The current time in Unix seconds, the unit of every time claim.
pub fn unix_now() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        // A clock before 1970 is broken; every token will look not yet valid, which is safe.
        Err(_) => 0,
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
///
/// The scheme is matched case-insensitively and may be followed by one or more spaces;
/// `None` for any other scheme, an empty token, or a token containing whitespace or control
/// characters.
pub fn bearer_token(header_value: &str) -> Option<&str> {
    let (scheme, rest) = header_value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return None;
    }
    let token = rest.trim_matches(' ');
    if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    Some(token)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bearer_token_accepts_the_bearer_scheme_in_any_case() {
        assert_eq!(bearer_token("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER abc"), Some("abc"));
        assert_eq!(bearer_token("bEaReR abc"), Some("abc"));
    }

    #[test]
    fn bearer_token_accepts_several_spaces() {
        assert_eq!(bearer_token("Bearer    abc"), Some("abc"));
        assert_eq!(bearer_token("Bearer abc  "), Some("abc"));
    }

    #[test]
    fn bearer_token_refuses_anything_else() {
        for bad in [
            "",
            "Bearer",
            "Bearer ",
            "Bearer    ",
            "Bearerabc",
            "Basic abc",
            "Token abc",
            " Bearer abc",
            "Bearer\tabc",
            "Bearer a b",
            "Bearer a\tb",
            "Bearer a\nb",
            "Bearer a\u{0}b",
            "Beärer abc",
            "Bearer: abc",
        ] {
            assert_eq!(bearer_token(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn unix_now_is_recent() {
        assert!(unix_now() > 1_700_000_000);
    }

    proptest! {
        #[test]
        fn bearer_token_never_panics(s in any::<String>()) {
            let _ = bearer_token(&s);
        }

        #[test]
        fn bearer_token_never_panics_on_bearer_like_input(s in "(?i:bearer)[ \t]{0,3}\\PC{0,20}") {
            if let Some(t) = bearer_token(&s) {
                prop_assert!(!t.is_empty());
                prop_assert!(s.ends_with(t) || s.trim_end_matches(' ').ends_with(t));
            }
        }

        #[test]
        fn bearer_token_returns_a_token68_unchanged(t in "[A-Za-z0-9._~+/-]+=*", spaces in 1usize..4) {
            let header = format!("Bearer{}{t}", " ".repeat(spaces));
            prop_assert_eq!(bearer_token(&header), Some(t.as_str()));
        }
    }
}
