//! Signed keyset-page cursors: opaque to clients, tamper-evident, and bound to the list they
//! came from.
//!
//! A cursor is `base64url(JSON {last, scope}) "." base64url(HMAC-SHA256)`, the MAC taken over
//! the first part exactly as sent. `last` is the key of the last item of a page (lists are
//! keyset-paged); `scope` is a string the service builds from what the list is of (the
//! caller's id, the filters of the query, …), so a genuine cursor replayed on another list is
//! refused. The key is generated once per database and kept in it
//! ([`CursorKey::load_or_create`]), so cursors survive restarts and every replica accepts the
//! cursors of the others.
//!
//! ```
//! use bazaar_store::cursor::{CursorError, CursorKey};
//! let key = CursorKey::from_bytes(&[7; 32]);
//! let cursor = key.seal("0190a0b4-1c1e-7aaa-8bbb-0123456789ab", "orders:u1");
//! assert_eq!(key.open(&cursor, "orders:u1").as_deref(), Ok("0190a0b4-1c1e-7aaa-8bbb-0123456789ab"));
//! assert_eq!(key.open(&cursor, "orders:u2"), Err(CursorError::OtherList));
//! ```

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use ring::{
    hmac,
    rand::{SecureRandom, SystemRandom},
};
use serde::{Deserialize, Serialize};

use crate::{secrets, Db};

/// Longer cursors are refused before any decoding (ours are well under 1 KiB).
pub const MAX_CURSOR_LEN: usize = 2048;

/// The length of a freshly generated key, in bytes.
pub const KEY_LEN: usize = 32;

/// A stored key shorter than this is refused at start-up.
pub const MIN_KEY_LEN: usize = 16;

/// The name of the cursor key in a service's secrets table.
pub const SECRET_NAME: &str = "cursor_hmac_key";

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
    /// A genuine cursor, issued for another list (another scope).
    #[error("the cursor belongs to a different list")]
    OtherList,
}

#[derive(Serialize, Deserialize)]
struct Payload<'a> {
    last: std::borrow::Cow<'a, str>,
    scope: std::borrow::Cow<'a, str>,
}

impl CursorKey {
    /// A key from stored bytes.
    pub fn from_bytes(key: &[u8]) -> CursorKey {
        CursorKey(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    /// Fresh random key bytes, for the first start of a database.
    pub fn generate_bytes() -> anyhow::Result<[u8; KEY_LEN]> {
        let mut key = [0_u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| anyhow::anyhow!("the system random source failed"))?;
        Ok(key)
    }

    /// The database's cursor key, kept under [`SECRET_NAME`] in the service's secrets table
    /// `table` (see [`secrets::get_or_insert`]): generated and stored on the first start,
    /// read afterwards, the same for every replica.
    pub async fn load_or_create(
        db: &Db,
        table: &'static str,
        now_micros: i64,
    ) -> anyhow::Result<CursorKey> {
        let fresh = Self::generate_bytes()?;
        let bytes = secrets::get_or_insert(db, table, SECRET_NAME, &fresh, now_micros).await?;
        anyhow::ensure!(
            bytes.len() >= MIN_KEY_LEN,
            "the stored cursor key is too short"
        );
        Ok(CursorKey::from_bytes(&bytes))
    }

    /// The cursor for the page after `last` of the list `scope`.
    pub fn seal(&self, last: &str, scope: &str) -> String {
        let payload = Payload {
            last: last.into(),
            scope: scope.into(),
        };
        // Serializing a struct of strings cannot fail.
        let json = serde_json::to_vec(&payload).unwrap_or_default();
        let body = URL_SAFE_NO_PAD.encode(json);
        let tag = hmac::sign(&self.0, body.as_bytes());
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The `last` a cursor was sealed with, if it is genuine and was issued for `scope`.
    pub fn open(&self, cursor: &str, scope: &str) -> Result<String, CursorError> {
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
        let payload: Payload<'_> =
            serde_json::from_slice(&json).map_err(|_| CursorError::Malformed)?;
        if payload.scope != scope {
            return Err(CursorError::OtherList);
        }
        Ok(payload.last.into_owned())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LAST: &str = "0190a0b4-1c1e-7aaa-8bbb-0123456789ab";

    fn key() -> CursorKey {
        CursorKey::from_bytes(&[7; KEY_LEN])
    }

    fn signed(body: &[u8]) -> String {
        let body = URL_SAFE_NO_PAD.encode(body);
        let tag = hmac::sign(&key().0, body.as_bytes());
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    #[test]
    fn a_sealed_cursor_opens_to_its_position_in_its_scope_only() {
        let cursor = key().seal(LAST, "orders:u1");
        assert_eq!(key().open(&cursor, "orders:u1"), Ok(LAST.to_owned()));
        assert_eq!(
            key().open(&cursor, "orders:u2"),
            Err(CursorError::OtherList)
        );
        assert_eq!(key().open(&cursor, ""), Err(CursorError::OtherList));
        assert_eq!(
            key().open(&cursor, "orders:u1 "),
            Err(CursorError::OtherList)
        );
    }

    #[test]
    fn the_wire_format_is_base64url_json_dot_tag() {
        let cursor = key().seal("a", "s");
        let (body, tag) = cursor.split_once('.').unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(body).unwrap(),
            br#"{"last":"a","scope":"s"}"#
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(tag).unwrap().len(), 32);
        assert_eq!(signed(br#"{"last":"a","scope":"s"}"#), cursor);
    }

    #[test]
    fn a_cursor_from_another_key_is_forged() {
        let cursor = CursorKey::from_bytes(&[8; KEY_LEN]).seal(LAST, "");
        assert_eq!(key().open(&cursor, ""), Err(CursorError::Forged));
    }

    #[test]
    fn junk_is_malformed_or_forged() {
        for junk in ["", ".", "abc", "abc.def", "a.b.c", "%%%.%%%"] {
            assert!(key().open(junk, "").is_err(), "{junk:?}");
        }
        let sealed_long = key().seal(&"a".repeat(MAX_CURSOR_LEN), "");
        assert_eq!(key().open(&sealed_long, ""), Err(CursorError::Malformed));
        assert_eq!(
            key().open(&"a".repeat(MAX_CURSOR_LEN + 1), ""),
            Err(CursorError::Malformed)
        );
    }

    #[test]
    fn padding_or_anything_appended_is_refused() {
        let cursor = key().seal(LAST, "");
        for suffix in ["=", "==", "A", "."] {
            assert!(
                key().open(&format!("{cursor}{suffix}"), "").is_err(),
                "{suffix:?}"
            );
        }
    }

    #[test]
    fn a_genuinely_signed_but_meaningless_payload_is_malformed() {
        for body in [
            &br#"{"last_id":"x","q":null,"category":null}"#[..],
            br#"{"last":"x"}"#,
            br#"{"last":1,"scope":""}"#,
            b"not json",
        ] {
            assert_eq!(
                key().open(&signed(body), ""),
                Err(CursorError::Malformed),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn generated_keys_differ_and_the_debug_form_hides_them() {
        let a = CursorKey::generate_bytes().unwrap();
        assert_ne!(a, CursorKey::generate_bytes().unwrap());
        assert_eq!(format!("{:?}", CursorKey::from_bytes(&a)), "CursorKey(..)");
    }

    proptest! {
        #[test]
        fn cursors_round_trip(last in "[ -~]{0,100}", scope in any::<String>()) {
            let cursor = key().seal(&last, &scope);
            prop_assert!(cursor.len() <= MAX_CURSOR_LEN);
            prop_assert!(cursor.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
            prop_assert_eq!(key().open(&cursor, &scope), Ok(last));
        }

        #[test]
        fn any_single_byte_change_is_rejected(index in any::<proptest::sample::Index>(), byte in any::<u8>()) {
            let k = key();
            let cursor = k.seal(LAST, "");
            let mut bytes = cursor.into_bytes();
            let i = index.index(bytes.len());
            prop_assume!(bytes[i] != byte);
            bytes[i] = byte;
            // A change that is not UTF-8 never reaches `open` (the query string must decode).
            if let Ok(changed) = String::from_utf8(bytes) {
                prop_assert!(k.open(&changed, "").is_err(), "{} was accepted", changed);
            }
        }

        #[test]
        fn arbitrary_strings_never_panic_and_are_refused(s in any::<String>()) {
            prop_assert!(key().open(&s, "").is_err());
        }

        #[test]
        fn arbitrary_dotted_base64_is_refused(a in "[A-Za-z0-9_-]{0,80}", b in "[A-Za-z0-9_-]{0,60}") {
            let cursor = format!("{a}.{b}");
            prop_assert!(key().open(&cursor, "").is_err());
        }
    }
}
