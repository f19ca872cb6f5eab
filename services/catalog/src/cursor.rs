//! The product list's page cursors: the shared signed cursors of [`bazaar_store::cursor`]
//! (their key kept in `catalog_secrets`), pointing after a [`ProductId`] and bound to the `q`
//! and `category` of the query they came from. A cursor replayed with another `q` or
//! `category` is refused: its position means nothing in a differently filtered list.

pub use bazaar_store::cursor::{CursorError, CursorKey};

use crate::domain::{Category, ProductId, SearchText};

/// What a list query filters on; part of every cursor it issues.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filters<'a> {
    /// The search text.
    pub q: Option<&'a SearchText>,
    /// The category.
    pub category: Option<&'a Category>,
}

impl Filters<'_> {
    /// The cursor for the page after `last` of the list filtered by these filters.
    pub fn seal(&self, key: &CursorKey, last: ProductId) -> String {
        key.seal(&last.to_string(), &self.scope())
    }

    /// The position `cursor` points after, if it is genuine and was issued for these filters.
    pub fn open(&self, key: &CursorKey, cursor: &str) -> Result<ProductId, CursorError> {
        let last = key.open(cursor, &self.scope())?;
        ProductId::parse(&last).ok_or(CursorError::Malformed)
    }

    /// Both filters as one string, unambiguously: a JSON array `[q, category]`.
    fn scope(&self) -> String {
        let pair = (
            self.q.map(SearchText::as_str),
            self.category.map(Category::as_str),
        );
        // Serializing a pair of optional strings cannot fail.
        serde_json::to_string(&pair).unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> CursorKey {
        CursorKey::from_bytes(&[7; 32])
    }

    fn q(s: &str) -> SearchText {
        SearchText::parse(Some(s)).unwrap().unwrap()
    }

    #[test]
    fn a_sealed_cursor_opens_to_its_position() {
        let id = ProductId::generate();
        let cursor = Filters::default().seal(&key(), id);
        assert_eq!(Filters::default().open(&key(), &cursor), Ok(id));
    }

    #[test]
    fn a_cursor_is_refused_for_another_query() {
        let id = ProductId::generate();
        let books = Category::parse("books").unwrap();
        let moka = q("moka");
        let with_both = Filters {
            q: Some(&moka),
            category: Some(&books),
        };
        let cursor = with_both.seal(&key(), id);
        assert_eq!(with_both.open(&key(), &cursor), Ok(id));
        let other = q("mokx");
        for filters in [
            Filters::default(),
            Filters {
                q: Some(&moka),
                category: None,
            },
            Filters {
                q: Some(&other),
                category: Some(&books),
            },
        ] {
            assert_eq!(
                filters.open(&key(), &cursor),
                Err(CursorError::OtherList),
                "{filters:?}"
            );
        }
    }

    #[test]
    fn the_same_text_as_q_or_as_category_is_another_query() {
        let books_q = q("books");
        let books = Category::parse("books").unwrap();
        let as_q = Filters {
            q: Some(&books_q),
            category: None,
        };
        let as_category = Filters {
            q: None,
            category: Some(&books),
        };
        let cursor = as_q.seal(&key(), ProductId::generate());
        assert_eq!(
            as_category.open(&key(), &cursor),
            Err(CursorError::OtherList)
        );
    }

    #[test]
    fn a_genuine_cursor_that_is_not_after_a_product_id_is_malformed() {
        let cursor = key().seal("nope", &Filters::default().scope());
        assert_eq!(
            Filters::default().open(&key(), &cursor),
            Err(CursorError::Malformed)
        );
    }

    proptest! {
        #[test]
        fn cursors_round_trip(
            q_text in proptest::option::of("[ -~]{1,100}"),
            category in proptest::option::of("[a-z0-9-]{1,50}"),
        ) {
            let q_text = q_text.and_then(|s| SearchText::parse(Some(&s)).unwrap());
            let category = category.map(|c| Category::parse(&c).unwrap());
            let filters = Filters { q: q_text.as_ref(), category: category.as_ref() };
            let id = ProductId::generate();
            let cursor = filters.seal(&key(), id);
            prop_assert!(cursor.len() <= bazaar_store::cursor::MAX_CURSOR_LEN);
            prop_assert_eq!(filters.open(&key(), &cursor), Ok(id));
        }
    }
}
