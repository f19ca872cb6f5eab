//! The `users` table.

use anyhow::Context as _;
use bazaar_store::Db;
use sqlx::Row as _;

use crate::domain::{DisplayName, Email, Role, User};

/// A user with the PHC string of their password, for logging in.
pub struct Credentials {
    /// The account.
    pub user: User,
    /// The argon2id PHC string.
    pub password_hash: String,
}

/// Why a user could not be inserted.
#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    /// Another account has the email.
    #[error("the email is already registered")]
    EmailTaken,
    /// The database failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

const COLUMNS: &str = "id, email, display_name, roles, created_at";

/// Inserts `user` with its password hash and publishes `user_registered` in the same
/// transaction; a duplicate email is [`InsertError::EmailTaken`].
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn insert(db: &Db, user: &User, password_hash: &str) -> Result<(), InsertError> {
    let mut tx = db.begin().await.context("begin insert user")?;
    let result = sqlx::query(
        "INSERT INTO users (id, email, display_name, password_hash, roles, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&user.id)
    .bind(user.email.as_str())
    .bind(user.display_name.as_str())
    .bind(password_hash)
    .bind(Role::join(&user.roles))
    .bind(user.created_at)
    .execute(&mut *tx)
    .await;
    match result {
        Ok(_) => {}
        Err(e) if bazaar_store::is_unique_violation(&e) => return Err(InsertError::EmailTaken),
        Err(e) => return Err(anyhow::Error::new(e).context("insert user").into()),
    }
    let event = bazaar_contracts::events::UserRegisteredV1 {
        user_id: user.id.clone(),
        display_name: user.display_name.as_str().to_owned(),
    };
    bazaar_messaging::publish(&mut tx, &event)
        .await
        .context("publish user_registered")?;
    tx.commit().await.context("commit insert user")?;
    Ok(())
}

/// The user with `email` and their password hash.
#[tracing::instrument(skip_all)]
pub async fn credentials_by_email(db: &Db, email: &Email) -> anyhow::Result<Option<Credentials>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS}, password_hash FROM users WHERE email = $1"
    ))
    .bind(email.as_str())
    .fetch_optional(db.reader())
    .await
    .context("load user by email")?;
    row.map(|row| {
        Ok(Credentials {
            user: user_of(&row)?,
            password_hash: row.try_get("password_hash")?,
        })
    })
    .transpose()
}

/// The user with `id`.
#[tracing::instrument(skip(db))]
pub async fn by_id(db: &Db, id: &str) -> anyhow::Result<Option<User>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.reader())
        .await
        .context("load user by id")?;
    row.as_ref().map(user_of).transpose()
}

/// Whether any account exists (the admin bootstrap runs only on an empty table).
#[tracing::instrument(skip_all)]
pub async fn any_exists(db: &Db) -> anyhow::Result<bool> {
    // The writer: a replica that just bootstrapped must be seen by the next check.
    let row = sqlx::query("SELECT id FROM users LIMIT 1")
        .fetch_optional(db.writer())
        .await
        .context("check for existing users")?;
    Ok(row.is_some())
}

fn user_of(row: &sqlx::any::AnyRow) -> anyhow::Result<User> {
    let id: String = row.try_get("id")?;
    let stored_roles: String = row.try_get("roles")?;
    let roles = Role::split(&stored_roles);
    if Role::join(&roles) != stored_roles {
        tracing::warn!(user_id = %id, roles = %stored_roles, "Ignoring unknown stored roles.");
    }
    Ok(User {
        id,
        email: Email::from_trusted(row.try_get("email")?),
        display_name: DisplayName::from_trusted(row.try_get("display_name")?),
        roles,
        created_at: row.try_get("created_at")?,
    })
}
