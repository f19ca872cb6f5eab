//! The parameters of a product list: page size and search text.

/// How many products one page holds: 1–100, 20 when not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u16);

/// Why a `limit` parameter is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// Not a plain decimal number, or outside 1–100.
    #[error("limit must be a whole number from 1 to 100")]
    Invalid,
}

impl Limit {
    /// The page size when none is asked for.
    pub const DEFAULT: Limit = Limit(20);
    /// The largest page size.
    pub const MAX: u16 = 100;

    /// Parses the `limit` query parameter; `None` (absent) is the default.
    pub fn parse(input: Option<&str>) -> Result<Limit, LimitError> {
        let Some(s) = input else {
            return Ok(Self::DEFAULT);
        };
        // Digits only: `+5`, ` 5`, `5.0` and `0x10` are not what a client meant to send.
        if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(LimitError::Invalid);
        }
        match s.parse::<u16>() {
            Ok(n) if (1..=Self::MAX).contains(&n) => Ok(Limit(n)),
            _ => Err(LimitError::Invalid),
        }
    }

    /// The page size.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

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
    fn limit_defaults_to_twenty_and_accepts_one_to_a_hundred() {
        assert_eq!(Limit::parse(None).unwrap().get(), 20);
        assert_eq!(Limit::parse(Some("1")).unwrap().get(), 1);
        assert_eq!(Limit::parse(Some("100")).unwrap().get(), 100);
        assert_eq!(Limit::parse(Some("007")).unwrap().get(), 7);
    }

    #[test]
    fn limit_refuses_everything_else() {
        for bad in [
            "",
            "0",
            "101",
            "1000",
            "abc",
            "-1",
            "+5",
            " 5",
            "5.0",
            "0x10",
            "99999999999999999999",
        ] {
            assert_eq!(Limit::parse(Some(bad)), Err(LimitError::Invalid), "{bad:?}");
        }
    }

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
        fn limit_accepts_exactly_one_to_a_hundred(n in any::<i64>()) {
            let parsed = Limit::parse(Some(&n.to_string()));
            prop_assert_eq!(parsed.is_ok(), (1..=100).contains(&n));
            if let Ok(l) = parsed {
                prop_assert_eq!(i64::from(l.get()), n);
            }
        }

        #[test]
        fn limit_never_panics(s in any::<String>()) {
            let _ = Limit::parse(Some(&s));
        }

        #[test]
        fn search_text_never_panics(s in any::<String>()) {
            if let Ok(Some(q)) = SearchText::parse(Some(&s)) {
                prop_assert!(q.like_pattern().starts_with('%'));
            }
        }
    }
}
