//! Page cursors: opaque to clients, tamper-evident, and bound to the query they came from.
//!
//! A cursor is `base64url(JSON {last_id, q, category}) "." base64url(HMAC-SHA256)`, the MAC
//! taken over the first part exactly as sent. The key lives in the catalog database (see
//! [`crate::store::secrets`]), so cursors survive restarts and every replica accepts the
//! cursors of the others. A cursor replayed with another `q` or `category` is refused: its
//! position means nothing in a differently filtered list.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use ring::{
    hmac,
    rand::{SecureRandom, SystemRandom},
};
use serde::{Deserialize, Serialize};

use crate::domain::{Category, ProductId, SearchText};

/// Longer cursors are refused before any decoding (ours are well under 1 KiB).
pub const MAX_CURSOR_LEN: usize = 2048;

/// The length of a freshly generated key, in bytes.
pub const KEY_LEN: usize = 32;

/// The HMAC key that signs and checks cursors.
pub struct CursorKey(hmac::Key);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

/// Why a cursor is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// Not of the cursor shape, or too long.
    #[error("the cursor is malformed")]
    Malformed,
    /// The MAC does not match: the cursor was altered or made up.
    #[error("the cursor is not valid")]
    Forged,
    /// A genuine cursor, issued for another `q` or `category`.
    #[error("the cursor belongs to a different query")]
    OtherQuery,
}

/// What a list query filters on; part of every cursor it issues.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filters<'a> {
    /// The search text.
    pub q: Option<&'a SearchText>,
    /// The category.
    pub category: Option<&'a Category>,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    last_id: String,
    q: Option<String>,
    category: Option<String>,
}

impl CursorKey {
    /// A key from stored bytes.
    pub fn from_bytes(key: &[u8]) -> CursorKey {
        CursorKey(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    /// Fresh random key bytes, for the first start of a catalog database.
    pub fn generate_bytes() -> anyhow::Result<[u8; KEY_LEN]> {
        let mut key = [0_u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| anyhow::anyhow!("the system random source failed"))?;
        Ok(key)
    }

    /// The cursor for the page after `last_id` of the list filtered by `filters`.
    pub fn seal(&self, last_id: ProductId, filters: Filters<'_>) -> String {
        let payload = Payload {
            last_id: last_id.to_string(),
            q: filters.q.map(|q| q.as_str().to_owned()),
            category: filters.category.map(|c| c.as_str().to_owned()),
        };
        // Serializing a struct of strings cannot fail.
        let json = serde_json::to_vec(&payload).unwrap_or_default();
        let body = URL_SAFE_NO_PAD.encode(json);
        let tag = hmac::sign(&self.0, body.as_bytes());
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The position a cursor points after, if it is genuine and was issued for `filters`.
    pub fn open(&self, cursor: &str, filters: Filters<'_>) -> Result<ProductId, CursorError> {
        if cursor.len() > MAX_CURSOR_LEN {
            return Err(CursorError::Malformed);
        }
        let (body, tag) = cursor.split_once('.').ok_or(CursorError::Malformed)?;
        // The decoder refuses padding and non-zero trailing bits, so every tag has one
        // spelling and no character of a cursor can change without changing what is checked.
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| CursorError::Malformed)?;
        hmac::verify(&self.0, body.as_bytes(), &tag).map_err(|_| CursorError::Forged)?;
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| CursorError::Malformed)?;
        let payload: Payload = serde_json::from_slice(&json).map_err(|_| CursorError::Malformed)?;
        let last_id = ProductId::parse(&payload.last_id).ok_or(CursorError::Malformed)?;
        if payload.q.as_deref() != filters.q.map(SearchText::as_str)
            || payload.category.as_deref() != filters.category.map(Category::as_str)
        {
            return Err(CursorError::OtherQuery);
        }
        Ok(last_id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> CursorKey {
        CursorKey::from_bytes(&[7; KEY_LEN])
    }

    fn q(s: &str) -> SearchText {
        SearchText::parse(Some(s)).unwrap().unwrap()
    }

    #[test]
    fn a_sealed_cursor_opens_to_its_position() {
        let id = ProductId::generate();
        let cursor = key().seal(id, Filters::default());
        assert_eq!(key().open(&cursor, Filters::default()), Ok(id));
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
        let cursor = key().seal(id, with_both);
        assert_eq!(key().open(&cursor, with_both), Ok(id));
        assert_eq!(
            key().open(&cursor, Filters::default()),
            Err(CursorError::OtherQuery)
        );
        assert_eq!(
            key().open(
                &cursor,
                Filters {
                    q: Some(&moka),
                    category: None
                }
            ),
            Err(CursorError::OtherQuery)
        );
        let other = q("mokx");
        assert_eq!(
            key().open(
                &cursor,
                Filters {
                    q: Some(&other),
                    category: Some(&books)
                }
            ),
            Err(CursorError::OtherQuery)
        );
    }

    #[test]
    fn a_cursor_from_another_key_is_forged() {
        let cursor =
            CursorKey::from_bytes(&[8; KEY_LEN]).seal(ProductId::generate(), Filters::default());
        assert_eq!(
            key().open(&cursor, Filters::default()),
            Err(CursorError::Forged)
        );
    }

    #[test]
    fn junk_is_malformed_or_forged() {
        for junk in [
            "",
            ".",
            "abc",
            "abc.def",
            "a.b.c",
            "%%%.%%%",
            &"a".repeat(MAX_CURSOR_LEN + 1),
        ] {
            assert!(key().open(junk, Filters::default()).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn a_genuinely_signed_but_meaningless_payload_is_malformed() {
        let body = URL_SAFE_NO_PAD.encode(br#"{"last_id":"nope","q":null,"category":null}"#);
        let tag = hmac::sign(&key().0, body.as_bytes());
        let cursor = format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        assert_eq!(
            key().open(&cursor, Filters::default()),
            Err(CursorError::Malformed)
        );
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(
            CursorKey::generate_bytes().unwrap(),
            CursorKey::generate_bytes().unwrap()
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
            let cursor = key().seal(id, filters);
            prop_assert!(cursor.len() <= MAX_CURSOR_LEN);
            prop_assert_eq!(key().open(&cursor, filters), Ok(id));
        }

        #[test]
        fn any_single_byte_change_is_rejected(index in any::<proptest::sample::Index>(), byte in any::<u8>()) {
            let k = key();
            let cursor = k.seal(ProductId::generate(), Filters::default());
            let mut bytes = cursor.clone().into_bytes();
            let i = index.index(bytes.len());
            prop_assume!(bytes[i] != byte);
            bytes[i] = byte;
            // A change that is not UTF-8 never reaches `open` (the query string must decode).
            if let Ok(changed) = String::from_utf8(bytes) {
                prop_assert!(k.open(&changed, Filters::default()).is_err(), "{} was accepted", changed);
            }
        }

        #[test]
        fn arbitrary_strings_never_panic_and_are_refused(s in any::<String>()) {
            prop_assert!(key().open(&s, Filters::default()).is_err());
        }

        #[test]
        fn arbitrary_dotted_base64_is_refused(a in "[A-Za-z0-9_-]{0,80}", b in "[A-Za-z0-9_-]{0,60}") {
            let cursor = format!("{a}.{b}");
            prop_assert!(key().open(&cursor, Filters::default()).is_err());
        }
    }
}
