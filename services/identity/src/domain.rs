//! Identity's domain: the values an account is made of and the rules they obey. No I/O.
//!
//! Every value has a private field and a fallible constructor, so a `NewUser` that exists
//! has already passed every rule: handlers parse once at the edge and the rest of the
//! service never re-checks.

mod display_name;
mod email;
mod new_user;
mod password;
mod role;
mod user;

pub use display_name::{DisplayName, DisplayNameError};
pub use email::{Email, EmailError};
pub use new_user::NewUser;
pub use password::{Password, PasswordError};
pub use role::Role;
pub use user::User;
