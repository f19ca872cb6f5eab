//! The shared state of the handlers and the operations they perform.

use std::sync::Arc;

use bazaar_auth::{Claims, JwkSet, Verifier, ACCESS_TOKEN_TTL_SECS};
use bazaar_runtime::time::{now_micros, now_unix};
use bazaar_store::Db;

use crate::domain::{Email, NewUser, Password, Role, User};
use crate::passwords::Passwords;
use crate::signing::{KeyRotation, Keys};
use crate::store::users::{self, InsertError};

/// Everything a request needs; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    passwords: Passwords,
    keys: Keys,
    bus: Option<bazaar_messaging::Bus>,
}

/// Why a registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// An account with the email exists.
    #[error("the email is already registered")]
    EmailTaken,
    /// The database or the hasher failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Why no token was issued.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown email or wrong password; deliberately one case.
    #[error("wrong email or password")]
    WrongCredentials,
    /// The database, the hasher or the signer failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// A signed access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The compact JWT.
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

impl AppState {
    /// State over an opened, migrated database; registrations wake `bus`'s outbox relay.
    pub fn new(
        db: Db,
        passwords: Passwords,
        keys: Keys,
        bus: Option<bazaar_messaging::Bus>,
    ) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                db,
                passwords,
                keys,
                bus,
            }),
        }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The event bus, when the service runs with one.
    pub fn bus(&self) -> Option<&bazaar_messaging::Bus> {
        self.inner.bus.as_ref()
    }

    /// The verifier that knows every published key (for the service stack).
    pub fn verifier(&self) -> Arc<Verifier> {
        self.inner.keys.verifier()
    }

    /// Creates a customer account.
    #[tracing::instrument(skip_all)]
    pub async fn register(&self, new: NewUser) -> Result<User, RegisterError> {
        let NewUser {
            email,
            password,
            display_name,
        } = new;
        let user = User {
            id: uuid::Uuid::now_v7().to_string(),
            email,
            display_name,
            roles: vec![Role::Customer],
            created_at: now_micros(),
        };
        let hash = self.inner.passwords.hash(password).await?;
        match users::insert(&self.inner.db, &user, &hash).await {
            Ok(()) => {
                if let Some(bus) = &self.inner.bus {
                    bus.notify();
                }
                tracing::info!(user_id = %user.id, "User registered.");
                Ok(user)
            }
            Err(InsertError::EmailTaken) => Err(RegisterError::EmailTaken),
            Err(InsertError::Unexpected(e)) => Err(e.into()),
        }
    }

    /// Checks `email` and `password` and issues an access token signed with the current key.
    ///
    /// An unknown email costs one argon2 verification like a wrong password, so the answer
    /// time does not tell whether an account exists. Input that no account can have (an
    /// invalid email, a password of the wrong length) is refused without hashing.
    #[tracing::instrument(skip_all)]
    pub async fn issue_token(
        &self,
        email: &str,
        password: String,
    ) -> Result<AccessToken, LoginError> {
        let (Ok(email), Ok(password)) = (Email::parse(email), Password::parse(password)) else {
            return Err(LoginError::WrongCredentials);
        };
        let found = users::credentials_by_email(&self.inner.db, &email).await?;
        let (user, hash) = match found {
            Some(c) => (Some(c.user), Some(c.password_hash)),
            None => (None, None),
        };
        let matches = self.inner.passwords.verify(password, hash).await?;
        let Some(user) = user.filter(|_| matches) else {
            tracing::info!("Refused a login with wrong credentials.");
            return Err(LoginError::WrongCredentials);
        };
        let key = self.inner.keys.current().await?;
        let claims = Claims::new_access(&user.id, user.role_names(), now_unix());
        let token = key
            .sign(&claims)
            .map_err(|e| anyhow::Error::new(e).context("sign an access token"))?;
        tracing::info!(user_id = %user.id, kid = key.kid(), "Issued an access token.");
        Ok(AccessToken {
            token,
            expires_in: ACCESS_TOKEN_TTL_SECS,
        })
    }

    /// The user with `id`, if the account exists.
    pub async fn user(&self, id: &str) -> anyhow::Result<Option<User>> {
        users::by_id(&self.inner.db, id).await
    }

    /// The public keys to publish.
    pub async fn jwks(&self) -> anyhow::Result<JwkSet> {
        self.inner.keys.published().await
    }

    /// Makes a new signing key current; the old one stays published until every token it
    /// signed has expired. This process's verifier trusts the new key at once.
    pub async fn rotate_key(&self) -> anyhow::Result<KeyRotation> {
        self.inner.keys.rotate().await
    }
}
