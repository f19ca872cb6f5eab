//! Idempotency keys and the fingerprint of the request they were first used with.

use ring::digest;
use serde_json::Value;

/// A client's `Idempotency-Key`: 1–255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

/// Why a header value is not an idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyKeyError {
    /// Absent or empty.
    #[error("the Idempotency-Key header is required")]
    Missing,
    /// Longer than [`IdempotencyKey::MAX_LEN`].
    #[error("the Idempotency-Key header must be at most 255 characters")]
    TooLong,
    /// A character outside visible ASCII (`!`..=`~`).
    #[error("the Idempotency-Key header must be visible ASCII characters only")]
    Invalid,
}

impl IdempotencyKey {
    /// The longest key accepted.
    pub const MAX_LEN: usize = 255;

    /// Parses the raw header bytes (`None` when the header is absent).
    pub fn parse(raw: Option<&[u8]>) -> Result<IdempotencyKey, IdempotencyKeyError> {
        let raw = raw.unwrap_or_default();
        if raw.is_empty() {
            return Err(IdempotencyKeyError::Missing);
        }
        if raw.len() > Self::MAX_LEN {
            return Err(IdempotencyKeyError::TooLong);
        }
        if !raw.iter().all(|b| (b'!'..=b'~').contains(b)) {
            return Err(IdempotencyKeyError::Invalid);
        }
        // Visible ASCII is valid UTF-8.
        Ok(IdempotencyKey(String::from_utf8_lossy(raw).into_owned()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The fingerprint of a request body: SHA-256 (hex) of its canonical JSON, so the same JSON
/// after parsing (any whitespace, any key order, `1.0` vs `1.00`) has the same fingerprint.
pub fn request_hash(body: &Value) -> String {
    let mut canonical = String::new();
    write_canonical(body, &mut canonical);
    let d = digest::digest(&digest::SHA256, canonical.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Objects with their keys sorted, no whitespace; scalars as serde_json writes them.
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert_eq!(
            IdempotencyKey::parse(Some(b"order-1")).unwrap().as_str(),
            "order-1"
        );
        assert!(IdempotencyKey::parse(Some("~!a".repeat(85).as_bytes())).is_ok());
        assert_eq!(
            IdempotencyKey::parse(None),
            Err(IdempotencyKeyError::Missing)
        );
        assert_eq!(
            IdempotencyKey::parse(Some(b"")),
            Err(IdempotencyKeyError::Missing)
        );
        assert_eq!(
            IdempotencyKey::parse(Some("a".repeat(256).as_bytes())),
            Err(IdempotencyKeyError::TooLong)
        );
        for bad in [&b"a b"[..], b"a\tb", "é".as_bytes(), b"\x7f"] {
            assert_eq!(
                IdempotencyKey::parse(Some(bad)),
                Err(IdempotencyKeyError::Invalid),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_hash_ignores_key_order_and_whitespace() {
        let a: Value = serde_json::from_str(r#"{"b": [1, {"y": 2, "x": 1}], "a": "s"}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":"s","b":[1,{"x":1,"y":2}]}"#).unwrap();
        assert_eq!(request_hash(&a), request_hash(&b));
        assert_eq!(request_hash(&a).len(), 64);
        assert_ne!(request_hash(&a), request_hash(&json!({"a": "s", "b": [1]})));
        assert_ne!(
            request_hash(&json!({"a": [1, 2]})),
            request_hash(&json!({"a": [2, 1]}))
        );
        assert_ne!(
            request_hash(&json!({"a": "1"})),
            request_hash(&json!({"a": 1}))
        );
    }
}
