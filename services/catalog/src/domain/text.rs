//! Free-text product fields: the name and the description.

use std::fmt;

/// A product name: 1–200 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(String);

/// Why a string is not a product name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductNameError {
    /// Empty or only whitespace.
    #[error("must not be empty")]
    Empty,
    /// More than 200 characters.
    #[error("must be at most 200 characters long")]
    TooLong,
    /// Contains a control character (newline, tab, NUL…).
    #[error("must not contain control characters")]
    Control,
}

impl ProductName {
    /// The longest name accepted, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Parses a name, trimming surrounding whitespace.
    pub fn parse(input: &str) -> Result<ProductName, ProductNameError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ProductNameError::Empty);
        }
        if s.chars().any(char::is_control) {
            return Err(ProductNameError::Control);
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(ProductNameError::TooLong);
        }
        Ok(ProductName(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProductName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A product description: 0–5000 characters; line breaks and tabs allowed, other control
/// characters not (PostgreSQL cannot store NUL, and nothing else has a use in prose).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

/// Why a string is not a description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DescriptionError {
    /// More than 5000 characters.
    #[error("must be at most 5000 characters long")]
    TooLong,
    /// A control character other than line feed, carriage return or tab.
    #[error("must not contain control characters other than line breaks and tabs")]
    Control,
}

impl Description {
    /// The longest description accepted, in characters.
    pub const MAX_CHARS: usize = 5000;

    /// Parses a description, trimming surrounding whitespace.
    pub fn parse(input: &str) -> Result<Description, DescriptionError> {
        let s = input.trim();
        if s.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(DescriptionError::Control);
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(DescriptionError::TooLong);
        }
        Ok(Description(s.to_owned()))
    }

    /// The description.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            ProductName::parse("  Moka pot ").unwrap().as_str(),
            "Moka pot"
        );
        assert_eq!(ProductName::parse("   "), Err(ProductNameError::Empty));
        assert_eq!(ProductName::parse("a\nb"), Err(ProductNameError::Control));
        assert!(ProductName::parse(&"é".repeat(200)).is_ok());
        assert_eq!(
            ProductName::parse(&"é".repeat(201)),
            Err(ProductNameError::TooLong)
        );
    }

    #[test]
    fn descriptions_may_be_empty_and_multi_line_but_not_binary() {
        assert_eq!(Description::parse("").unwrap().as_str(), "");
        assert!(Description::parse("line one\nline two\ttabbed").is_ok());
        assert_eq!(
            Description::parse("nul\0byte"),
            Err(DescriptionError::Control)
        );
        assert!(Description::parse(&"x".repeat(5000)).is_ok());
        assert_eq!(
            Description::parse(&"x".repeat(5001)),
            Err(DescriptionError::TooLong)
        );
    }

    proptest! {
        #[test]
        fn parsing_text_never_panics(s in any::<String>()) {
            if let Ok(n) = ProductName::parse(&s) {
                prop_assert!(!n.as_str().is_empty() && n.as_str().chars().count() <= 200);
            }
            let _ = Description::parse(&s);
        }
    }
}
