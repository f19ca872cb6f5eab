//! The command to create an account, already checked.

use super::{DisplayName, Email, Password};

/// Everything needed to register a user; it can only be built from parsed values.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The login name.
    pub email: Email,
    /// The password to hash.
    pub password: Password,
    /// The name shown to people.
    pub display_name: DisplayName,
}
