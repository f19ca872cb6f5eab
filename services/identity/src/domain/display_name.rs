//! The name a user is shown by.

/// The most characters a display name may have.
pub const MAX_CHARS: usize = 100;

/// A trimmed display name of 1–100 characters without control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

/// Why a string is not a [`DisplayName`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DisplayNameError {
    /// Nothing left after trimming.
    #[error("must not be empty")]
    Empty,
    /// More than [`MAX_CHARS`] characters after trimming.
    #[error("must be at most 100 characters")]
    TooLong,
    /// Contains a control character (Unicode category Cc: newline, tab, NUL, DEL, C1).
    #[error("must not contain control characters")]
    Control,
}

impl DisplayName {
    /// Trims `input` and checks it.
    pub fn parse(input: &str) -> Result<DisplayName, DisplayNameError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(DisplayNameError::Empty);
        }
        if trimmed.chars().take(MAX_CHARS + 1).count() > MAX_CHARS {
            return Err(DisplayNameError::TooLong);
        }
        if trimmed.chars().any(char::is_control) {
            return Err(DisplayNameError::Control);
        }
        Ok(DisplayName(trimmed.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds a name read back from the database, which only ever holds parsed ones.
    pub(crate) fn from_trusted(stored: String) -> DisplayName {
        DisplayName(stored)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_trimmed() {
        assert_eq!(
            DisplayName::parse("  Ada Lovelace \n").unwrap().as_str(),
            "Ada Lovelace"
        );
    }

    #[test]
    fn accepts_and_refuses_a_table_of_names() {
        for ok in ["A", "Ada", "李小龙", "Zoë O'Brien-Smith", "🦀 Ferris"] {
            assert!(DisplayName::parse(ok).is_ok(), "{ok:?}");
        }
        for (bad, why) in [
            ("", DisplayNameError::Empty),
            (" \t\n ", DisplayNameError::Empty),
            ("Ada\nLovelace", DisplayNameError::Control),
            ("Ada\u{0}", DisplayNameError::Control),
            ("Ada\u{7f}x", DisplayNameError::Control),
            ("Ada\u{9b}x", DisplayNameError::Control),
        ] {
            assert_eq!(DisplayName::parse(bad), Err(why), "{bad:?}");
        }
    }

    #[test]
    fn the_limit_is_100_characters_after_trimming() {
        assert!(DisplayName::parse(&"é".repeat(100)).is_ok());
        assert!(DisplayName::parse(&format!("  {}  ", "x".repeat(100))).is_ok());
        assert_eq!(
            DisplayName::parse(&"é".repeat(101)),
            Err(DisplayNameError::TooLong)
        );
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_results_obey_the_rules(s in any::<String>()) {
            if let Ok(name) = DisplayName::parse(&s) {
                let n = name.as_str();
                prop_assert_eq!(n, n.trim());
                prop_assert!((1..=MAX_CHARS).contains(&n.chars().count()));
                prop_assert!(!n.chars().any(char::is_control));
            }
        }

        #[test]
        fn printable_names_up_to_100_characters_are_kept(s in "[a-zA-Z0-9][a-zA-Z0-9 äöü]{0,98}[a-z]") {
            let name = DisplayName::parse(&s).unwrap();
            prop_assert_eq!(name.as_str(), s.as_str());
        }
    }
}
