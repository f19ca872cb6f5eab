//! Per-request context: request id and W3C trace context, visible to all code a request runs.
//!
//! The [`crate::middleware`] stack parses `X-Request-Id` and `traceparent` from the incoming
//! request, starts a new span id under the caller's trace (or a new trace), and runs the
//! handler inside a task-local scope, so problems, logs and outgoing calls can read it with
//! [`current`] without threading it through every function.

use http::{HeaderMap, HeaderValue};
use rand::RngCore;

/// The request id header.
pub const REQUEST_ID: &str = "x-request-id";
/// The W3C trace context header.
pub const TRACEPARENT: &str = "traceparent";

/// What a request carries through the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// The client's `X-Request-Id` if acceptable, else a generated one.
    pub request_id: String,
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// This hop's span id, 16 lowercase hex digits.
    pub span_id: String,
    /// The caller's span id, if a valid `traceparent` came in.
    pub parent_span_id: Option<String>,
    /// The W3C trace flags (sampled bit).
    pub flags: u8,
    /// The request path, used as the problem `instance`.
    pub path: String,
}

/// What the task serving a request knows about it: its context, and what the logs say about
/// it (the stack's log formatter reads these instead of formatting span fields up front).
#[derive(Debug)]
pub(crate) struct Current {
    pub(crate) ctx: RequestContext,
    pub(crate) log: Option<LogFields>,
}

/// The request's fields on every log line emitted while serving it.
#[derive(Debug)]
pub(crate) struct LogFields {
    pub(crate) service: &'static str,
    pub(crate) method: http::Method,
    pub(crate) route: RouteName,
}

/// The matched route of a request, or `unmatched`.
#[derive(Debug, Clone)]
pub(crate) enum RouteName {
    Matched(axum::extract::MatchedPath),
    Unmatched,
}

impl RouteName {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            RouteName::Matched(p) => p.as_str(),
            RouteName::Unmatched => "unmatched",
        }
    }
}

tokio::task_local! {
    static CURRENT: Current;
}

/// The context of the request being served by this task, if any.
pub fn current() -> Option<RequestContext> {
    CURRENT.try_with(|c| c.ctx.clone()).ok()
}

/// Calls `f` with the context of the request being served by this task, if any, without
/// copying it.
pub fn with_current<R>(f: impl FnOnce(&RequestContext) -> R) -> Option<R> {
    CURRENT.try_with(|c| f(&c.ctx)).ok()
}

pub(crate) fn with_current_full<R>(f: impl FnOnce(&Current) -> R) -> Option<R> {
    CURRENT.try_with(f).ok()
}

/// The trace id of the request being served, if any.
pub fn current_trace_id() -> Option<String> {
    CURRENT.try_with(|c| c.ctx.trace_id.clone()).ok()
}

/// Runs `fut` with `ctx` as the current request context.
pub async fn scope<F: std::future::Future>(ctx: RequestContext, fut: F) -> F::Output {
    CURRENT.scope(Current { ctx, log: None }, fut).await
}

pub(crate) async fn scope_full<F: std::future::Future>(current: Current, fut: F) -> F::Output {
    CURRENT.scope(current, fut).await
}

impl RequestContext {
    /// Builds the context of an incoming request from its headers.
    pub fn from_headers(headers: &HeaderMap, path: &str) -> Self {
        let request_id = headers
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| is_valid_request_id(v))
            .map_or_else(new_request_id, str::to_owned);
        let parent = headers
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_traceparent);
        let (trace_id, parent_span_id, flags) = match parent {
            Some(p) => (p.trace_id, Some(p.span_id), p.flags),
            None => (random_hex(16), None, 1),
        };
        Self {
            request_id,
            trace_id,
            span_id: random_hex(8),
            parent_span_id,
            flags,
            path: path.to_owned(),
        }
    }

    /// The `traceparent` naming this hop as parent, for responses and outgoing calls.
    pub fn traceparent(&self) -> String {
        // Built by hand: this runs on every request, and `format!` costs several times more.
        let mut s = String::with_capacity(3 + self.trace_id.len() + 1 + self.span_id.len() + 3);
        s.push_str("00-");
        s.push_str(&self.trace_id);
        s.push('-');
        s.push_str(&self.span_id);
        s.push('-');
        push_hex(&mut s, self.flags);
        s
    }

    /// The `traceparent` as a header value (None if an id holds bytes a header cannot).
    pub fn traceparent_header(&self) -> Option<HeaderValue> {
        HeaderValue::try_from(self.traceparent()).ok()
    }

    /// The request id as a header value (None if it holds bytes a header cannot).
    pub fn request_id_header(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&self.request_id).ok()
    }

    /// Adds `traceparent` and `X-Request-Id` to the headers of an outgoing call.
    pub fn inject(&self, headers: &mut HeaderMap) {
        if let Some(v) = self.traceparent_header() {
            headers.insert(TRACEPARENT, v);
        }
        if let Some(v) = self.request_id_header() {
            headers.insert(REQUEST_ID, v);
        }
    }
}

/// A parsed W3C `traceparent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    /// 32 lowercase hex digits, not all zero.
    pub trace_id: String,
    /// 16 lowercase hex digits, not all zero.
    pub span_id: String,
    /// Trace flags.
    pub flags: u8,
}

/// Parses a `traceparent` header (version 00, or a later version's first four fields).
pub fn parse_traceparent(value: &str) -> Option<TraceParent> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let span_id = parts.next()?;
    let flags = parts.next()?;
    if version.len() != 2 || !is_lower_hex(version) || version == "ff" {
        return None;
    }
    // Version 00 has exactly four fields; later versions may append more.
    if version == "00" && parts.next().is_some() {
        return None;
    }
    if trace_id.len() != 32 || !is_lower_hex(trace_id) || trace_id.bytes().all(|b| b == b'0') {
        return None;
    }
    if span_id.len() != 16 || !is_lower_hex(span_id) || span_id.bytes().all(|b| b == b'0') {
        return None;
    }
    if flags.len() != 2 || !is_lower_hex(flags) {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(TraceParent {
        trace_id: trace_id.to_owned(),
        span_id: span_id.to_owned(),
        flags,
    })
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether a client-sent request id is kept: 1–128 characters of `[A-Za-z0-9._-]`.
pub fn is_valid_request_id(v: &str) -> bool {
    (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A fresh request id (a UUIDv7: sortable, unique).
pub fn new_request_id() -> String {
    let mut buf = uuid::Uuid::encode_buffer();
    uuid::Uuid::now_v7()
        .hyphenated()
        .encode_lower(&mut buf)
        .to_owned()
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    // Ids are 8 or 16 bytes: one stack buffer, no formatting machinery (this runs twice per
    // request).
    let mut s = String::with_capacity(n * 2);
    let mut rng = rand::thread_rng();
    let mut buf = [0u8; 16];
    let mut left = n;
    while left > 0 {
        let take = left.min(buf.len());
        rng.fill_bytes(&mut buf[..take]);
        for &b in &buf[..take] {
            push_hex(&mut s, b);
        }
        left -= take;
    }
    s
}

fn push_hex(s: &mut String, b: u8) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    s.push(char::from(DIGITS[usize::from(b >> 4)]));
    s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keeps_the_callers_trace_and_starts_a_new_span() {
        let mut h = HeaderMap::new();
        h.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let ctx = RequestContext::from_headers(&h, "/x");
        assert_eq!(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_ne!(ctx.span_id, "00f067aa0ba902b7");
        assert!(ctx
            .traceparent()
            .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    }

    #[test]
    fn rejects_invalid_traceparents() {
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn replaces_an_unacceptable_request_id() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("bad id with spaces"));
        let ctx = RequestContext::from_headers(&h, "/");
        assert_ne!(ctx.request_id, "bad id with spaces");
        assert!(is_valid_request_id(&ctx.request_id));
        h.insert(REQUEST_ID, HeaderValue::from_static("abc.DEF_1-2"));
        assert_eq!(
            RequestContext::from_headers(&h, "/").request_id,
            "abc.DEF_1-2"
        );
    }

    #[test]
    fn random_hex_is_lowercase_hex_of_the_asked_length() {
        for n in [0, 1, 8, 16, 17, 40] {
            let s = random_hex(n);
            assert_eq!(s.len(), n * 2);
            assert!(is_lower_hex(&s), "{s}");
        }
        assert_ne!(random_hex(16), random_hex(16));
    }

    #[test]
    fn new_request_ids_are_hyphenated_uuids() {
        let id = new_request_id();
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
        assert_eq!(id, id.to_lowercase());
        assert!(is_valid_request_id(&id));
    }

    proptest! {
        #[test]
        fn traceparent_parser_never_panics_and_round_trips(s in ".{0,80}") {
            let _ = parse_traceparent(&s);
        }

        #[test]
        fn generated_traceparents_parse(trace in "[0-9a-f]{31}[1-9a-f]", span in "[0-9a-f]{15}[1-9a-f]", flags in any::<u8>()) {
            let ctx = RequestContext { request_id: "r".into(), trace_id: trace.clone(), span_id: span.clone(), parent_span_id: None, flags, path: "/".into() };
            let parsed = parse_traceparent(&ctx.traceparent()).unwrap();
            prop_assert_eq!(parsed.trace_id, trace);
            prop_assert_eq!(parsed.span_id, span);
            prop_assert_eq!(parsed.flags, flags);
        }
    }
}
