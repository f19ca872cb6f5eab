//! The first admin account, created when identity starts on an empty database.

use anyhow::{anyhow, Context as _};
use bazaar_runtime::time::now_micros;
use bazaar_store::Db;
use rand::distributions::{Alphanumeric, DistString as _};

use crate::domain::{DisplayName, Email, Password, Role, User};
use crate::passwords::Passwords;
use crate::store::users::{self, InsertError};

/// The login of the bootstrapped admin.
pub const ADMIN_EMAIL: &str = "admin@bazaar.local";
/// The display name of the bootstrapped admin.
pub const ADMIN_DISPLAY_NAME: &str = "Administrator";
/// The length of a generated admin password (alphanumeric: about 119 bits).
pub const GENERATED_PASSWORD_CHARS: usize = 20;

/// A random alphanumeric password of [`GENERATED_PASSWORD_CHARS`] characters from the OS
/// generator.
pub fn random_password() -> String {
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, GENERATED_PASSWORD_CHARS)
}

/// Creates the admin account if there is no account at all, with `configured` as its
/// password or a generated one, and tells the operator on stdout.
///
/// The password goes to stdout with `println!` and never through `tracing`: logs are
/// shipped and kept, and must not carry a credential. When two replicas start on one empty
/// database, the unique email lets only one of them create the account; the other sees the
/// conflict and leaves it at that.
pub async fn ensure_admin(
    db: &Db,
    passwords: &Passwords,
    configured: Option<String>,
) -> anyhow::Result<()> {
    if users::any_exists(db).await? {
        return Ok(());
    }
    let generated = configured.is_none();
    let plain = configured.unwrap_or_else(random_password);
    let password = Password::parse(plain.clone())
        .map_err(|e| anyhow!("the admin password (BAZAAR_ADMIN_PASSWORD) {e}"))?;
    let admin = User {
        id: uuid::Uuid::now_v7().to_string(),
        email: Email::parse(ADMIN_EMAIL).context("the admin email")?,
        display_name: DisplayName::parse(ADMIN_DISPLAY_NAME).context("the admin name")?,
        roles: vec![Role::Customer, Role::Admin],
        created_at: now_micros(),
    };
    let hash = passwords.hash(password).await?;
    match users::insert(db, &admin, &hash).await {
        Ok(()) => {}
        Err(InsertError::EmailTaken) => {
            tracing::info!("Another identity instance created the admin account.");
            return Ok(());
        }
        Err(InsertError::Unexpected(e)) => return Err(e.context("create the admin account")),
    }
    tracing::info!(user_id = %admin.id, "Created the admin account.");
    println!("bazaar-identity: created admin account {ADMIN_EMAIL}");
    if generated {
        println!("bazaar-identity: admin password (shown once): {plain}");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_20_alphanumerics_and_differ() {
        let a = random_password();
        assert_eq!(a.chars().count(), GENERATED_PASSWORD_CHARS);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, random_password());
        assert!(Password::parse(a).is_ok());
    }

    #[tokio::test]
    async fn an_admin_is_created_once_and_a_too_short_password_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_for_service(
            "identity",
            dir.path(),
            None,
            &crate::store::all_migrations(),
        )
        .await
        .unwrap();
        let passwords = Passwords::with_permits(1).await.unwrap();
        let err = ensure_admin(&db, &passwords, Some("short".into()))
            .await
            .unwrap_err()
            .to_string();
        assert!(!err.contains("short"), "{err}");
        assert!(!users::any_exists(&db).await.unwrap());

        ensure_admin(&db, &passwords, None).await.unwrap();
        let email = Email::parse(ADMIN_EMAIL).unwrap();
        let first = users::credentials_by_email(&db, &email)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.user.roles, vec![Role::Customer, Role::Admin]);
        // A second start finds accounts and changes nothing.
        ensure_admin(&db, &passwords, Some("another password".into()))
            .await
            .unwrap();
        let again = users::credentials_by_email(&db, &email)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.password_hash, first.password_hash);
    }
}
