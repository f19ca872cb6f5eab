//! An email address in the one normal form identity stores and compares.

/// The longest address accepted (RFC 5321's path limit minus the angle brackets).
pub const MAX_LEN: usize = 254;
/// The longest local part (before the `@`).
pub const MAX_LOCAL_LEN: usize = 64;

/// A syntactically valid email address: trimmed and lower-cased.
///
/// The rules are deliberately simple and ASCII-only (no quoted local parts, no IP-literal or
/// internationalised domains): the address is a login name, and two spellings of the same
/// account must normalise to the same string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// Why a string is not an [`Email`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Nothing left after trimming.
    #[error("must not be empty")]
    Empty,
    /// Longer than [`MAX_LEN`].
    #[error("must be at most 254 characters")]
    TooLong,
    /// No `@`, or more than one.
    #[error("must contain exactly one '@'")]
    At,
    /// The part before the `@` is empty, too long or has a space, control or non-ASCII
    /// character.
    #[error("the part before '@' must be 1-64 printable ASCII characters without spaces")]
    LocalPart,
    /// The part after the `@` is not a domain name of at least two labels.
    #[error("the part after '@' must be a domain name like example.com")]
    Domain,
}

impl Email {
    /// Parses and normalises `input`.
    pub fn parse(input: &str) -> Result<Email, EmailError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        // Checked on chars first so that a huge non-ASCII input is refused before any copy.
        if trimmed.chars().count() > MAX_LEN {
            return Err(EmailError::TooLong);
        }
        // ASCII-only lower-casing: Unicode case folding could turn a look-alike (the Kelvin
        // sign, say) into an ASCII letter and let two different inputs name one account.
        let lowered = trimmed.to_ascii_lowercase();
        let mut parts = lowered.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(EmailError::At);
        };
        if local.is_empty()
            || local.len() > MAX_LOCAL_LEN
            || !local.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(EmailError::LocalPart);
        }
        if !is_domain(domain) {
            return Err(EmailError::Domain);
        }
        Ok(Email(lowered))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds an address read back from the database, which only ever holds parsed ones.
    pub(crate) fn from_trusted(stored: String) -> Email {
        Email(stored)
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// At least two dot-separated labels of `[a-z0-9-]`, none empty, none starting or ending with
/// a hyphen.
fn is_domain(domain: &str) -> bool {
    let mut labels = 0usize;
    for label in domain.split('.') {
        let ok = !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return false;
        }
        labels += 1;
    }
    labels >= 2
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_ordinary_addresses_and_normalises_them() {
        for (input, normal) in [
            ("ada@example.com", "ada@example.com"),
            ("  Ada.Lovelace@Example.COM \n", "ada.lovelace@example.com"),
            ("a+tag@sub.example.co.uk", "a+tag@sub.example.co.uk"),
            ("x@a-b.c0", "x@a-b.c0"),
            (
                "o'brien!#$%&*/=?^_`{|}~@x.io",
                "o'brien!#$%&*/=?^_`{|}~@x.io",
            ),
            ("1@2.3", "1@2.3"),
        ] {
            assert_eq!(
                Email::parse(input).map(|e| e.as_str().to_owned()),
                Ok(normal.to_owned()),
                "{input:?}"
            );
        }
    }

    #[test]
    fn refuses_malformed_addresses_with_the_reason() {
        for (input, why) in [
            ("", EmailError::Empty),
            ("   ", EmailError::Empty),
            ("ada", EmailError::At),
            ("ada@@example.com", EmailError::At),
            ("a@b@example.com", EmailError::At),
            ("@example.com", EmailError::LocalPart),
            ("a b@example.com", EmailError::LocalPart),
            ("a\u{7}b@example.com", EmailError::LocalPart),
            ("ädä@example.com", EmailError::LocalPart),
            ("ada@", EmailError::Domain),
            ("ada@localhost", EmailError::Domain),
            ("ada@example..com", EmailError::Domain),
            ("ada@.example.com", EmailError::Domain),
            ("ada@example.com.", EmailError::Domain),
            ("ada@-example.com", EmailError::Domain),
            ("ada@example-.com", EmailError::Domain),
            ("ada@exa_mple.com", EmailError::Domain),
            ("ada@exämple.com", EmailError::Domain),
            ("ada@[127.0.0.1]", EmailError::Domain),
            ("ada@\u{212A}.com", EmailError::Domain),
        ] {
            assert_eq!(Email::parse(input), Err(why), "{input:?}");
        }
    }

    #[test]
    fn the_local_part_may_have_64_characters_but_not_65() {
        let ok = format!("{}@example.com", "a".repeat(64));
        assert!(Email::parse(&ok).is_ok());
        let long = format!("{}@example.com", "a".repeat(65));
        assert_eq!(Email::parse(&long), Err(EmailError::LocalPart));
    }

    #[test]
    fn the_address_may_have_254_characters_but_not_255() {
        // No label length limit is part of the rules, so one long label makes up the length.
        let domain = |len: usize| format!("{}.com", "d".repeat(len - 4));
        let ok = format!("{}@{}", "a".repeat(64), domain(254 - 65));
        assert_eq!(ok.len(), 254);
        assert!(Email::parse(&ok).is_ok(), "{ok}");
        let long = format!("{}@{}", "a".repeat(64), domain(255 - 65));
        assert_eq!(long.len(), 255);
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in any::<String>()) {
            let _ = Email::parse(&s);
        }

        #[test]
        fn a_parsed_address_is_lower_case_trimmed_and_reparses_to_itself(s in "\\PC{0,40}") {
            if let Ok(email) = Email::parse(&s) {
                let text = email.as_str();
                prop_assert_eq!(text, text.trim());
                prop_assert!(!text.bytes().any(|b| b.is_ascii_uppercase()));
                prop_assert_eq!(Email::parse(text), Ok(email.clone()));
            }
        }

        #[test]
        fn generated_valid_addresses_are_accepted_in_lower_case(
            local in "[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}",
            labels in proptest::collection::vec("[A-Za-z0-9]([A-Za-z0-9-]{0,8}[A-Za-z0-9])?", 2..4),
            pad in "[ \t]{0,2}",
        ) {
            let input = format!("{pad}{local}@{}{pad}", labels.join("."));
            let email = Email::parse(&input).unwrap();
            prop_assert_eq!(email.as_str(), input.trim().to_ascii_lowercase());
        }

        #[test]
        fn any_upper_case_spelling_parses_to_the_same_address(s in "[a-z]{1,10}@[a-z]{1,10}\\.[a-z]{2,5}", flips in any::<u64>()) {
            let mixed: String = s
                .chars()
                .enumerate()
                .map(|(i, c)| if flips >> (i % 64) & 1 == 1 { c.to_ascii_uppercase() } else { c })
                .collect();
            prop_assert_eq!(Email::parse(&mixed).unwrap(), Email::parse(&s).unwrap());
        }
    }
}
