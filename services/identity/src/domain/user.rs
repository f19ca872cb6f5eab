//! An account as identity knows it.

use super::{DisplayName, Email, Role};

/// A registered user. The password hash is not part of it: it never leaves the store module
/// except to be verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// UUIDv7, as a string.
    pub id: String,
    /// The normalised address, unique.
    pub email: Email,
    /// The name shown to people.
    pub display_name: DisplayName,
    /// Customer, and maybe admin.
    pub roles: Vec<Role>,
    /// When the account was created, microseconds since the Unix epoch.
    pub created_at: i64,
}

impl User {
    /// The role names as the `roles` claim carries them.
    pub fn role_names(&self) -> Vec<String> {
        self.roles.iter().map(|r| r.as_str().to_owned()).collect()
    }
}
