//! Ed25519 signing keys and their public JWK form.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};

use crate::{AuthError, Claims};

/// An Ed25519 private key with its key id.
///
/// Only identity holds one; it persists [`SigningKey::pkcs8_der`] and publishes
/// [`SigningKey::public_jwk`] at `/.well-known/jwks.json`.
pub struct SigningKey {
    kid: String,
    pkcs8: Vec<u8>,
    public: [u8; 32],
    encoding: EncodingKey,
}

impl SigningKey {
    /// A new random key with a new random url-safe key id.
    pub fn generate() -> Result<SigningKey, AuthError> {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| AuthError::Key("could not generate an Ed25519 key".into()))?;
        let mut id = [0u8; 16];
        rng.fill(&mut id)
            .map_err(|_| AuthError::Key("could not generate a key id".into()))?;
        SigningKey::from_pkcs8(URL_SAFE_NO_PAD.encode(id), pkcs8.as_ref())
    }

    /// Loads a key persisted with [`SigningKey::pkcs8_der`].
    ///
    /// Only PKCS#8 v2 documents (which embed the public key, as ring generates them) are
    /// accepted, so the embedded public key is checked against the private one.
    pub fn from_pkcs8(kid: String, pkcs8_der: &[u8]) -> Result<SigningKey, AuthError> {
        if kid.is_empty() {
            return Err(AuthError::Key("key id is empty".into()));
        }
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8_der)
            .map_err(|e| AuthError::Key(format!("invalid Ed25519 PKCS#8 document: {e}")))?;
        let public: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| AuthError::Key("unexpected Ed25519 public key length".into()))?;
        Ok(SigningKey {
            kid,
            pkcs8: pkcs8_der.to_vec(),
            public,
            encoding: EncodingKey::from_ed_der(pkcs8_der),
        })
    }

    /// The key id, written into the `kid` header of every token this key signs.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private key as a PKCS#8 v2 DER document, for persisting. Treat it as a secret.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public half, in the form published in the JWKS.
    pub fn public_jwk(&self) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(self.public),
            kid: self.kid.clone(),
            alg: "EdDSA".into(),
            use_: "sig".into(),
        }
    }

    /// Signs `claims` into a compact JWT with header `{"alg":"EdDSA","typ":"JWT","kid":..}`.
    pub fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| AuthError::Key(format!("could not sign token: {e}")))
    }

    #[cfg(test)]
    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    #[cfg(test)]
    pub(crate) fn public_key_bytes(&self) -> [u8; 32] {
        self.public
    }
}

impl std::fmt::Debug for SigningKey {
    // Key material must never reach a log line, not even the public half by accident of a
    // derive: the kid is enough to tell keys apart.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A public key in JSON Web Key form (RFC 8037 `OKP`/`Ed25519`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type, `"OKP"`.
    pub kty: String,
    /// Curve, `"Ed25519"`.
    pub crv: String,
    /// The 32-byte public key, base64url without padding.
    pub x: String,
    /// Key id, matched against a token's `kid` header.
    pub kid: String,
    /// Algorithm, `"EdDSA"`.
    pub alg: String,
    /// Public key use, `"sig"`.
    #[serde(rename = "use")]
    pub use_: String,
}

impl Jwk {
    /// The raw 32-byte Ed25519 public key, if this JWK is an Ed25519 signing key we may use.
    ///
    /// Anything else is refused rather than guessed at: a key of another type under a known
    /// `kid` must never change how a token is checked.
    pub fn ed25519_public_key(&self) -> Result<[u8; 32], AuthError> {
        if self.kty != "OKP" || self.crv != "Ed25519" || self.alg != "EdDSA" || self.use_ != "sig" {
            return Err(AuthError::Key(format!(
                "key {:?} is not an Ed25519 signing key",
                self.kid
            )));
        }
        if self.kid.is_empty() {
            return Err(AuthError::Key("key has an empty kid".into()));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(&self.x)
            .map_err(|_| AuthError::Key(format!("key {:?} has an invalid x", self.kid)))?;
        bytes
            .try_into()
            .map_err(|_| AuthError::Key(format!("key {:?} is not 32 bytes long", self.kid)))
    }
}

/// A JWK Set, the body of `/.well-known/jwks.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys; a verifier accepts a token signed by any of them.
    pub keys: Vec<Jwk>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn from_pkcs8_round_trips_a_generated_key() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_pkcs8(key.kid().to_owned(), key.pkcs8_der()).unwrap();
        assert_eq!(again.kid(), key.kid());
        assert_eq!(again.pkcs8_der(), key.pkcs8_der());
        assert_eq!(again.public_jwk(), key.public_jwk());
    }

    #[test]
    fn from_pkcs8_refuses_garbage_and_an_empty_kid() {
        assert!(matches!(
            SigningKey::from_pkcs8("k".into(), b"not a key"),
            Err(AuthError::Key(_))
        ));
        let key = SigningKey::generate().unwrap();
        assert!(matches!(
            SigningKey::from_pkcs8(String::new(), key.pkcs8_der()),
            Err(AuthError::Key(_))
        ));
    }

    #[test]
    fn generated_keys_have_distinct_url_safe_kids() {
        let a = SigningKey::generate().unwrap();
        let b = SigningKey::generate().unwrap();
        assert_ne!(a.kid(), b.kid());
        assert!(a
            .kid()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }

    #[test]
    fn debug_of_a_signing_key_shows_the_kid_and_no_key_material() {
        let key = SigningKey::generate().unwrap();
        let debug = format!("{key:?} {key:#?}");
        assert!(debug.contains(key.kid()));
        let der = key.pkcs8_der();
        // The seed is the 32 bytes after the 16-byte PKCS#8 v2 prefix.
        let seed = &der[16..48];
        for needle in [
            URL_SAFE_NO_PAD.encode(der),
            URL_SAFE_NO_PAD.encode(seed),
            key.public_jwk().x,
            format!("{:?}", der),
            format!("{:?}", seed),
            format!("{:?}", &seed[..4]),
            seed.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        ] {
            assert!(!debug.contains(&needle), "Debug leaked {needle}");
        }
    }

    #[test]
    fn public_jwk_serializes_with_the_use_field_name() {
        let key = SigningKey::generate().unwrap();
        let json = serde_json::to_value(key.public_jwk()).unwrap();
        assert_eq!(json["kty"], "OKP");
        assert_eq!(json["crv"], "Ed25519");
        assert_eq!(json["alg"], "EdDSA");
        assert_eq!(json["use"], "sig");
        assert_eq!(json["kid"], key.kid());
        let back: Jwk = serde_json::from_value(json).unwrap();
        assert_eq!(back.ed25519_public_key().unwrap(), key.public_key_bytes());
    }

    #[test]
    fn a_jwk_of_another_type_is_not_used_as_an_ed25519_key() {
        let good = SigningKey::generate().unwrap().public_jwk();
        let mut rsa = good.clone();
        rsa.kty = "RSA".into();
        let mut hmac = good.clone();
        hmac.alg = "HS256".into();
        let mut short = good.clone();
        short.x = URL_SAFE_NO_PAD.encode([1u8; 31]);
        for jwk in [rsa, hmac, short] {
            assert!(jwk.ed25519_public_key().is_err(), "{jwk:?}");
        }
    }
}
