//! A password as a user chose it, kept out of every log.

/// The fewest characters a password may have.
pub const MIN_CHARS: usize = 8;
/// The most characters a password may have; it also bounds the work of hashing one.
pub const MAX_CHARS: usize = 128;

/// A password of 8–128 characters (Unicode scalar values, not bytes).
///
/// Not trimmed or normalised: what the user typed is what gets hashed. `Debug` never shows
/// it, and it is not `Display`, so it cannot end up in a log line or a response by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

/// Why a string is not a [`Password`]. The message never repeats the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Fewer than [`MIN_CHARS`] characters.
    #[error("must be at least 8 characters")]
    TooShort,
    /// More than [`MAX_CHARS`] characters.
    #[error("must be at most 128 characters")]
    TooLong,
}

impl Password {
    /// Checks the length of `input` and keeps it.
    pub fn parse(input: String) -> Result<Password, PasswordError> {
        // Counting stops just past the limit so a huge input costs no more than a legal one.
        match input.chars().take(MAX_CHARS + 1).count() {
            n if n < MIN_CHARS => Err(PasswordError::TooShort),
            n if n > MAX_CHARS => Err(PasswordError::TooLong),
            _ => Ok(Password(input)),
        }
    }

    /// The password itself, for hashing and verifying only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_length_limits_are_8_and_128_characters_inclusive() {
        assert_eq!(Password::parse("a".repeat(7)), Err(PasswordError::TooShort));
        assert!(Password::parse("a".repeat(8)).is_ok());
        assert!(Password::parse("a".repeat(128)).is_ok());
        assert_eq!(
            Password::parse("a".repeat(129)),
            Err(PasswordError::TooLong)
        );
        assert_eq!(Password::parse(String::new()), Err(PasswordError::TooShort));
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        // 8 characters, 32 bytes.
        assert!(Password::parse("🔑".repeat(8)).is_ok());
        assert_eq!(
            Password::parse("🔑".repeat(7)),
            Err(PasswordError::TooShort)
        );
        // 128 characters, 256 bytes.
        assert!(Password::parse("ß".repeat(128)).is_ok());
        assert_eq!(
            Password::parse("ß".repeat(129)),
            Err(PasswordError::TooLong)
        );
    }

    #[test]
    fn the_password_is_kept_as_typed() {
        let p = Password::parse("  Spaces kept \t".into()).unwrap();
        assert_eq!(p.expose(), "  Spaces kept \t");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let p = Password::parse("correct horse battery".into()).unwrap();
        let debug = format!("{p:?} {p:#?}");
        assert!(!debug.contains("correct"), "{debug}");
        let err = Password::parse("short".into()).unwrap_err().to_string();
        assert!(!err.contains("short"), "{err}");
    }

    proptest! {
        #[test]
        fn any_string_is_accepted_exactly_when_it_has_8_to_128_characters(s in any::<String>()) {
            let chars = s.chars().count();
            let result = Password::parse(s.clone());
            prop_assert_eq!(result.is_ok(), (MIN_CHARS..=MAX_CHARS).contains(&chars));
            if let Ok(p) = result {
                prop_assert_eq!(p.expose(), s.as_str());
            }
        }

        #[test]
        fn unicode_passwords_are_measured_in_characters(s in "\\PC{0,200}") {
            let chars = s.chars().count();
            prop_assert_eq!(Password::parse(s).is_ok(), (8..=128).contains(&chars));
        }
    }
}
