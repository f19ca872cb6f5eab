//! The `wait` preference of the `Prefer` header (RFC 7240).

use http::HeaderMap;

/// The longest wait honoured, in seconds; longer asks are cut to it.
pub const MAX_WAIT_SECS: u64 = 30;

/// The `wait=N` preference of the request, capped at [`MAX_WAIT_SECS`], if one parses.
///
/// Parsed tolerantly, as RFC 7240 asks: any number of `Prefer` headers, each a
/// comma-separated list of preferences with `;` parameters, names case-insensitive,
/// whitespace around `=`, quoted values; preferences that do not parse are ignored.
pub fn parse_wait(headers: &HeaderMap) -> Option<u64> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|pref| {
            let head = pref.split(';').next()?;
            let (name, value) = head.split_once('=')?;
            if !name.trim().eq_ignore_ascii_case("wait") {
                return None;
            }
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // All digits: only too many of them fails to parse, which is "a very long wait".
            Some(value.parse::<u64>().unwrap_or(u64::MAX).min(MAX_WAIT_SECS))
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn wait(values: &[&str]) -> Option<u64> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("prefer", HeaderValue::from_str(v).unwrap());
        }
        parse_wait(&h)
    }

    #[test]
    fn reads_wait_tolerantly() {
        assert_eq!(wait(&["wait=5"]), Some(5));
        assert_eq!(wait(&["WAIT = 7"]), Some(7));
        assert_eq!(wait(&["respond-async, wait=3"]), Some(3));
        assert_eq!(wait(&["handling=lenient", "wait=\"4\"; foo=bar"]), Some(4));
        assert_eq!(wait(&["wait=0"]), Some(0));
    }

    #[test]
    fn caps_and_ignores() {
        assert_eq!(wait(&["wait=31"]), Some(30));
        assert_eq!(wait(&["wait=99999999999999999999999"]), Some(30));
        assert_eq!(wait(&["wait=-1"]), None);
        assert_eq!(wait(&["wait=abc", "wait=2"]), Some(2));
        assert_eq!(wait(&["wait"]), None);
        assert_eq!(wait(&["return=minimal"]), None);
        assert_eq!(wait(&[]), None);
    }
}
