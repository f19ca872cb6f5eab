//! The search text of a product list (its page size is [`bazaar_runtime::page::Limit`]).

/// The `q` of a product search: trimmed, at most 100 characters, no control characters.
/// Empty input means "no search".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText(String);

/// Why a `q` parameter is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchTextError {
    /// More than 100 characters.
    #[error("q must be at most 100 characters long")]
    TooLong,
    /// A control character.
    #[error("q must not contain control characters")]
    Control,
}

impl SearchText {
    /// The longest search accepted, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Parses `q`; `Ok(None)` when absent or blank.
    pub fn parse(input: Option<&str>) -> Result<Option<SearchText>, SearchTextError> {
        let s = input.unwrap_or_default().trim();
        if s.chars().count() > Self::MAX_CHARS {
            return Err(SearchTextError::TooLong);
        }
        if s.chars().any(char::is_control) {
            return Err(SearchTextError::Control);
        }
        Ok((!s.is_empty()).then(|| SearchText(s.to_owned())))
    }

    /// The search text as the client typed it (trimmed).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A `LIKE … ESCAPE '\'` pattern matching the text anywhere, lower-cased, with the
    /// wildcards `%` and `_` and the escape `\` of the input taken literally.
    pub fn like_pattern(&self) -> String {
        let mut out = String::with_capacity(self.0.len() + 2);
        out.push('%');
        for c in self.0.to_lowercase().chars() {
            if matches!(c, '%' | '_' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('%');
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn search_text_is_trimmed_and_blank_means_none() {
        assert_eq!(SearchText::parse(None).unwrap(), None);
        assert_eq!(SearchText::parse(Some("   ")).unwrap(), None);
        assert_eq!(
            SearchText::parse(Some(" moka ")).unwrap().unwrap().as_str(),
            "moka"
        );
        assert_eq!(
            SearchText::parse(Some(&"x".repeat(101))),
            Err(SearchTextError::TooLong)
        );
        assert_eq!(
            SearchText::parse(Some("a\0b")),
            Err(SearchTextError::Control)
        );
    }

    #[test]
    fn like_patterns_escape_wildcards_and_lower_case() {
        let q = SearchText::parse(Some("100% Ar_abica\\")).unwrap().unwrap();
        assert_eq!(q.like_pattern(), "%100\\% ar\\_abica\\\\%");
    }

    proptest! {
        #[test]
        fn search_text_never_panics(s in any::<String>()) {
            if let Ok(Some(q)) = SearchText::parse(Some(&s)) {
                prop_assert!(q.like_pattern().starts_with('%'));
            }
        }
    }
}
