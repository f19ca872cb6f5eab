//! Hashing and verifying passwords with argon2id, off the async runtime and bounded.
//!
//! One hash takes tens of milliseconds of one core and 19 MiB of memory. Running it on the
//! async workers would stall every other request, and running an unbounded number at once
//! would let a login flood take all CPUs and memory; so hashes run on the blocking pool
//! behind a semaphore with one permit per core.

use std::sync::Arc;

use anyhow::{anyhow, Context as _};
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::domain::Password;

/// Memory cost in KiB (OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane).
pub const MEMORY_KIB: u32 = 19_456;
/// Passes over the memory.
pub const ITERATIONS: u32 = 2;
/// Lanes.
pub const PARALLELISM: u32 = 1;

/// The password hasher of one identity process.
#[derive(Clone)]
pub struct Passwords {
    argon2: Argon2<'static>,
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against when the email is unknown so that an
    /// unknown email costs as much time as a wrong password.
    dummy_hash: Arc<str>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("available_permits", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

impl Passwords {
    /// A hasher with one permit per available core; computes the dummy hash.
    pub async fn new() -> anyhow::Result<Passwords> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Passwords::with_permits(cores).await
    }

    /// A hasher that runs at most `permits` hashes at once.
    pub async fn with_permits(permits: usize) -> anyhow::Result<Passwords> {
        let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
            .map_err(|e| anyhow!("argon2 parameters: {e}"))?;
        let mut passwords = Passwords {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            permits: Arc::new(Semaphore::new(permits.max(1))),
            dummy_hash: Arc::from(""),
        };
        let random = Password::parse(crate::bootstrap::random_password())
            .map_err(|e| anyhow!("dummy password: {e}"))?;
        passwords.dummy_hash = Arc::from(passwords.hash(random).await?);
        Ok(passwords)
    }

    /// The PHC string of `password` with a fresh random salt.
    pub async fn hash(&self, password: Password) -> anyhow::Result<String> {
        let argon2 = self.argon2.clone();
        self.run(move || {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            argon2
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| anyhow!("hash password: {e}"))
        })
        .await
    }

    /// Whether `password` matches the PHC string `hash`. With no hash (unknown user) the
    /// dummy hash is verified instead and the answer is `false`, in about the same time.
    pub async fn verify(&self, password: Password, hash: Option<String>) -> anyhow::Result<bool> {
        let argon2 = self.argon2.clone();
        let known = hash.is_some();
        let phc = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let matches = self
            .run(move || {
                let parsed =
                    PasswordHash::new(&phc).map_err(|e| anyhow!("stored hash is invalid: {e}"))?;
                match argon2.verify_password(password.expose().as_bytes(), &parsed) {
                    Ok(()) => Ok(true),
                    Err(argon2::password_hash::Error::Password) => Ok(false),
                    Err(e) => Err(anyhow!("verify password: {e}")),
                }
            })
            .await?;
        Ok(known && matches)
    }

    /// Runs `work` on the blocking pool once a permit is free. The permit moves into the
    /// blocking task, so a request cancelled mid-hash still holds it until the CPU is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .context("the password hasher is closed")?;
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop(permit);
            result
        })
        .await
        .context("the password hashing task failed")?
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Password::parse(s.to_owned()).unwrap()
    }

    #[tokio::test]
    async fn a_hash_is_argon2id_with_the_owasp_parameters_and_verifies() {
        let passwords = Passwords::with_permits(1).await.unwrap();
        let hash = passwords.hash(pw("correct horse")).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(!hash.contains("correct horse"));
        assert!(passwords
            .verify(pw("correct horse"), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!passwords
            .verify(pw("correct horsE"), Some(hash.clone()))
            .await
            .unwrap());
        // Salted: the same password hashes differently each time.
        assert_ne!(passwords.hash(pw("correct horse")).await.unwrap(), hash);
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let passwords = Passwords::with_permits(1).await.unwrap();
        assert!(!passwords.verify(pw("anything at all"), None).await.unwrap());
    }

    #[tokio::test]
    async fn a_corrupt_stored_hash_is_an_error_not_a_match() {
        let passwords = Passwords::with_permits(1).await.unwrap();
        assert!(passwords
            .verify(pw("anything at all"), Some("not a phc string".into()))
            .await
            .is_err());
    }

    #[tokio::test]
    async fn concurrent_hashes_wait_for_a_permit_and_all_finish() {
        let passwords = Passwords::with_permits(1).await.unwrap();
        let tasks: Vec<_> = (0..4)
            .map(|i| {
                let passwords = passwords.clone();
                tokio::spawn(async move { passwords.hash(pw(&format!("password-{i}"))).await })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap().is_ok());
        }
        assert_eq!(passwords.permits.available_permits(), 1);
    }
}
