//! The claims carried by a Bazaar access token.

use serde::{Deserialize, Serialize};

use crate::{ACCESS_TOKEN_TTL_SECS, AUDIENCE, ISSUER};

/// The payload of an access token.
///
/// Every field is required when decoding: a token without `exp` or `nbf` is malformed rather
/// than "valid forever".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Who issued the token; always [`ISSUER`] for tokens we accept.
    pub iss: String,
    /// Who the token is for; always [`AUDIENCE`] for tokens we accept.
    pub aud: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Not before, Unix seconds.
    pub nbf: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Unique token id, for audit logs.
    pub jti: String,
    /// Role names, e.g. `["customer"]` or `["customer", "admin"]`.
    pub roles: Vec<String>,
}

impl Claims {
    /// Claims for a fresh access token for `user_id`, valid from `now_unix` for
    /// [`ACCESS_TOKEN_TTL_SECS`].
    pub fn new_access(user_id: &str, roles: Vec<String>, now_unix: i64) -> Claims {
        Claims {
            sub: user_id.to_owned(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            exp: now_unix.saturating_add(ACCESS_TOKEN_TTL_SECS),
            nbf: now_unix,
            iat: now_unix,
            jti: uuid::Uuid::new_v4().to_string(),
            roles,
        }
    }

    /// Whether the roles include `admin`.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_access_token_claims_are_issued_for_bazaar_and_last_fifteen_minutes() {
        let c = Claims::new_access("u1", vec!["customer".into()], 1_000);
        assert_eq!(c.sub, "u1");
        assert_eq!(c.iss, ISSUER);
        assert_eq!(c.aud, AUDIENCE);
        assert_eq!(c.iat, 1_000);
        assert_eq!(c.nbf, 1_000);
        assert_eq!(c.exp, 1_900);
        assert_ne!(c.jti, Claims::new_access("u1", vec![], 1_000).jti);
    }

    #[test]
    fn only_the_admin_role_makes_an_admin() {
        let mut c = Claims::new_access("u1", vec!["customer".into()], 0);
        assert!(!c.is_admin());
        c.roles.push("Admin".into());
        assert!(!c.is_admin());
        c.roles.push("admin".into());
        assert!(c.is_admin());
    }
}
