//! The one error type of this crate.

/// Why a token was refused, or why keys could not be made or loaded.
///
/// The messages are deliberately terse and never echo the token: they end up in logs, and the
/// HTTP edge answers every client error with the same generic 401 anyway.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The token is longer than [`crate::MAX_TOKEN_BYTES`]; nothing of it was decoded.
    #[error("token is too large")]
    TooLarge,
    /// The token is not a well-formed JWT, or a required claim or header field is missing.
    #[error("token is malformed")]
    Malformed,
    /// The header names an algorithm other than `EdDSA` (including `none` and HMAC).
    #[error("token algorithm is not allowed")]
    AlgorithmNotAllowed,
    /// No known public key has the token's `kid`, even after asking the key source.
    #[error("token was signed by an unknown key")]
    UnknownKey,
    /// The Ed25519 signature does not match the header and claims.
    #[error("token signature is invalid")]
    BadSignature,
    /// `exp` (plus [`crate::LEEWAY_SECS`]) has passed.
    #[error("token has expired")]
    Expired,
    /// `nbf` (minus [`crate::LEEWAY_SECS`]) has not been reached yet.
    #[error("token is not valid yet")]
    NotYetValid,
    /// `iss` is not [`crate::ISSUER`].
    #[error("token has the wrong issuer")]
    WrongIssuer,
    /// `aud` is not [`crate::AUDIENCE`].
    #[error("token has the wrong audience")]
    WrongAudience,
    /// No public keys are known and the key source could not provide any: the verifier, not the
    /// token, is at fault.
    #[error("token signing keys are unavailable")]
    KeysUnavailable,
    /// A key could not be generated, parsed or used for signing.
    #[error("key error: {0}")]
    Key(String),
}

impl AuthError {
    /// `true` when the token itself is bad (answer 401), `false` when this side failed
    /// (answer 503 or 500).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, AuthError::KeysUnavailable | AuthError::Key(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_key_problems_are_server_errors() {
        assert!(!AuthError::KeysUnavailable.is_client_error());
        assert!(!AuthError::Key("x".into()).is_client_error());
        for e in [
            AuthError::TooLarge,
            AuthError::Malformed,
            AuthError::AlgorithmNotAllowed,
            AuthError::UnknownKey,
            AuthError::BadSignature,
            AuthError::Expired,
            AuthError::NotYetValid,
            AuthError::WrongIssuer,
            AuthError::WrongAudience,
        ] {
            assert!(e.is_client_error(), "{e:?}");
        }
    }
}
