//! Product categories: short lower-case slugs used for browsing and filtering.

use std::fmt;

/// A category slug: 1–50 characters of `[a-z0-9-]`.
///
/// Input is trimmed and lower-cased first (`Books` is `books`), so a filter typed with a
/// capital letter still finds the category.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Category(String);

/// Why a string is not a category.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CategoryError {
    /// Empty, or more than 50 characters.
    #[error("must be 1 to 50 characters long")]
    Length,
    /// A character outside `[a-z0-9-]`.
    #[error("may contain only letters a-z, digits and '-'")]
    Charset,
}

impl Category {
    /// The longest category accepted.
    pub const MAX_LEN: usize = 50;

    /// Parses a category, trimming and lower-casing it.
    pub fn parse(input: &str) -> Result<Category, CategoryError> {
        let s = input.trim();
        if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(CategoryError::Charset);
        }
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(CategoryError::Length);
        }
        Ok(Category(s.to_ascii_lowercase()))
    }

    /// The slug.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_slugs_and_lower_cases_them() {
        assert_eq!(Category::parse("books").unwrap().as_str(), "books");
        assert_eq!(
            Category::parse(" Board-Games ").unwrap().as_str(),
            "board-games"
        );
        assert!(Category::parse(&"a".repeat(50)).is_ok());
    }

    #[test]
    fn refuses_empty_long_and_non_slug_input() {
        assert_eq!(Category::parse(""), Err(CategoryError::Length));
        assert_eq!(Category::parse(&"a".repeat(51)), Err(CategoryError::Length));
        assert_eq!(
            Category::parse("home & garden"),
            Err(CategoryError::Charset)
        );
        assert_eq!(Category::parse("café"), Err(CategoryError::Charset));
        assert_eq!(Category::parse("a_b"), Err(CategoryError::Charset));
    }

    proptest! {
        #[test]
        fn accepted_categories_are_slugs(s in any::<String>()) {
            if let Ok(c) = Category::parse(&s) {
                let v = c.as_str();
                prop_assert!((1..=50).contains(&v.len()));
                prop_assert!(v.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
            }
        }

        #[test]
        fn slugs_round_trip(s in "[a-z0-9-]{1,50}") {
            let c = Category::parse(&s).unwrap();
            prop_assert_eq!(c.as_str(), s.as_str());
        }
    }
}
