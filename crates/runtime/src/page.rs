//! The parameters every paged list shares: the `?limit=` page size, 1–100, 20 when absent.
//!
//! ```
//! use bazaar_runtime::{page::Limit, Problem};
//! # fn handler(raw: Option<&str>) -> Result<u16, Problem> {
//! let limit = Limit::parse(raw)?; // a bad value is a 400 malformed-request problem
//! # Ok(limit.get()) }
//! assert_eq!(handler(None).unwrap(), 20);
//! assert_eq!(handler(Some("0")).unwrap_err().status(), 400);
//! ```

use crate::Problem;

/// How many items one page holds: 1–100, 20 when not given.
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

/// A refused `limit` is a `malformed-request` problem (400) saying what is accepted.
impl From<LimitError> for Problem {
    fn from(e: LimitError) -> Problem {
        Problem::malformed(e.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::ProblemKind;
    use proptest::prelude::*;

    #[test]
    fn limit_defaults_to_twenty_and_accepts_one_to_a_hundred() {
        assert_eq!(Limit::parse(None), Ok(Limit::DEFAULT));
        assert_eq!(Limit::parse(None).unwrap().get(), 20);
        assert_eq!(Limit::default(), Limit::DEFAULT);
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
            "5 ",
            "5.0",
            "0x10",
            "99999999999999999999",
        ] {
            assert_eq!(Limit::parse(Some(bad)), Err(LimitError::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn a_refused_limit_is_a_malformed_request_problem() {
        let p = Problem::from(LimitError::Invalid);
        assert_eq!(p.kind(), ProblemKind::MalformedRequest);
        assert_eq!(p.status(), 400);
        assert_eq!(p.detail(), "limit must be a whole number from 1 to 100");
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
    }
}
