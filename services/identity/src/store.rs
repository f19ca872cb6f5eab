//! Identity's SQL: accounts and signing keys, portable between SQLite and PostgreSQL.

pub mod keys;
pub mod users;

use bazaar_store::Migration;

/// The schema, applied in order by [`bazaar_store::Db::open_for_service`].
pub static MIGRATIONS: &[Migration] = &[Migration::new(
    1,
    "users and signing keys",
    include_str!("../migrations/0001_users_and_signing_keys.sql"),
)];

/// Identity's migrations and those of the messaging tables (its outbox).
pub fn all_migrations() -> Vec<Migration> {
    [MIGRATIONS, bazaar_messaging::MIGRATIONS].concat()
}
