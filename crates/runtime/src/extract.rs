//! Request extractors whose rejections are problems with JSON pointers.
//!
//! [`Json`] answers 415 for a missing or wrong `Content-Type`, 413 past the route's body
//! limit, 400 for malformed JSON and 422 (with the pointer of the offending field) for JSON
//! of the wrong shape. Unknown fields are ignored, as the contract says.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    response::{IntoResponse, Response},
};
use http::{header, request::Parts, StatusCode};
use serde::{de::DeserializeOwned, Serialize};

use crate::problem::{FieldError, Problem, ProblemKind};

/// A JSON body (extractor) or JSON response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json_content_type(req.headers()) {
            return Err(Problem::new(
                ProblemKind::UnsupportedMediaType,
                "The body must be application/json.",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    ProblemKind::PayloadTooLarge,
                    "The body is larger than this route accepts.",
                )
            } else {
                Problem::malformed("The body could not be read.")
            }
        })?;
        parse_json(&bytes).map(Json)
    }
}

/// Deserializes `bytes`, turning errors into 400 (syntax) or 422 (shape, with a pointer).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    // Every request body of this API is an object; serde would otherwise fill a struct from
    // an array by position (`["a@b.c", "pw", "name"]`).
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(_) => Problem::validation(vec![FieldError::new("", "must be a JSON object")]),
            Err(e) => malformed(&e),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let inner = err.inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let mut pointer = pointer_of(err.path());
                let msg = inner.to_string();
                if let Some(field) = missing_field(&msg) {
                    pointer.push('/');
                    pointer.push_str(&escape(field));
                }
                Problem::validation(vec![FieldError::new(pointer, strip_position(&msg))])
            }
            _ => malformed(inner),
        }
    })?;
    de.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

fn malformed(err: &serde_json::Error) -> Problem {
    Problem::malformed(format!(
        "The body is not valid JSON: {}.",
        strip_position(&err.to_string())
    ))
}

fn is_json_content_type(headers: &http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => {
                out.push('/');
                out.push_str(&index.to_string());
            }
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out.push('/');
                out.push_str(&escape(key));
            }
            Segment::Unknown => {}
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn missing_field(msg: &str) -> Option<&str> {
    let rest = msg.strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// serde_json appends " at line X column Y": position noise that means nothing to a client.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A query string; a bad one is a 400 problem.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or_default();
        serde_urlencoded_like(q).map(Query)
    }
}

fn serde_urlencoded_like<T: DeserializeOwned>(q: &str) -> Result<T, Problem> {
    axum::extract::Query::<T>::try_from_uri(
        &http::Uri::try_from(format!("/?{q}"))
            .map_err(|_| Problem::malformed("The query string is malformed."))?,
    )
    .map(|axum::extract::Query(v)| v)
    .map_err(|e| Problem::malformed(format!("Bad query parameter: {}", e.body_text())))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Line {
        product_id: String,
        quantity: u32,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Order {
        items: Vec<Line>,
    }

    #[test]
    fn points_at_the_field_of_the_wrong_type() {
        let err =
            parse_json::<Order>(br#"{"items":[{"product_id":"a","quantity":"two"}]}"#).unwrap_err();
        assert_eq!(err.status(), 422);
        assert_eq!(err.errors()[0].pointer, "/items/0/quantity");
    }

    #[test]
    fn points_at_a_missing_field() {
        let err = parse_json::<Order>(br#"{"items":[{"product_id":"a"}]}"#).unwrap_err();
        assert_eq!(err.errors()[0].pointer, "/items/0/quantity");
    }

    #[test]
    fn malformed_json_is_a_400_and_unknown_fields_are_ignored() {
        assert_eq!(
            parse_json::<Order>(br#"{"items":["#).unwrap_err().status(),
            400
        );
        assert_eq!(
            parse_json::<Order>(br#"{"items":[]} trailing"#)
                .unwrap_err()
                .status(),
            400
        );
        assert!(parse_json::<Order>(br#"{"items":[],"admin":true}"#).is_ok());
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused() {
        let err = parse_json::<Order>(br#"[[]]"#).unwrap_err();
        assert_eq!(err.status(), 422);
        assert_eq!(err.errors()[0].pointer, "");
        assert_eq!(parse_json::<Order>(b"  [").unwrap_err().status(), 400);
        assert_eq!(parse_json::<Order>(b"").unwrap_err().status(), 400);
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_json::<Order>(&bytes);
        }
    }
}
