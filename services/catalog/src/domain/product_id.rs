//! Product identifiers.

use std::fmt;

use uuid::Uuid;

/// A product id: a UUIDv7, so that ids sort by creation time (newest-first lists page on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProductId(Uuid);

impl ProductId {
    /// A fresh, time-ordered id.
    pub fn generate() -> ProductId {
        ProductId(Uuid::now_v7())
    }

    /// Parses the hyphenated form; `None` for anything else (a path id that is not a UUID is
    /// answered like an unknown product).
    pub fn parse(input: &str) -> Option<ProductId> {
        // Only the canonical 36-character form: the id is also a text key in SQL, and
        // `{…}`, `urn:uuid:` or simple forms would not compare equal to the stored text.
        if input.len() != 36 {
            return None;
        }
        Uuid::try_parse(input).ok().map(ProductId)
    }

    /// The UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for ProductId {
    /// Lower-case hyphenated, the form stored in SQL (so text order is time order).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_round_trip_and_sort_by_creation_as_text() {
        let a = ProductId::generate();
        let b = ProductId::generate();
        assert_eq!(ProductId::parse(&a.to_string()), Some(a));
        assert!(a.to_string() < b.to_string());
    }

    #[test]
    fn upper_case_ids_parse_to_the_same_id() {
        let a = ProductId::generate();
        assert_eq!(ProductId::parse(&a.to_string().to_uppercase()), Some(a));
    }

    #[test]
    fn refuses_non_uuids() {
        for bad in [
            "",
            "42",
            "not-a-uuid",
            "0190a0b0c0d0e0f0a0b0c0d0e0f0a0b0",
            "{0190a0b0-c0d0-7e0f-a0b0-c0d0e0f0a0b0}",
        ] {
            assert_eq!(ProductId::parse(bad), None, "{bad}");
        }
    }
}
