//! Logging: `tracing` to stderr, human-readable on a terminal and JSON lines otherwise
//! (`BAZAAR_LOG_FORMAT=json|text` overrides), filtered by `BAZAAR_LOG` or `RUST_LOG`
//! (default `info`). Every line logged while serving a request carries `trace_id` and
//! `request_id` (and the `service`, `method` and `route` it serves).
//!
//! In text form those come from the fields of the request span. In JSON form (what services
//! log in production) the request span has no fields: formatting five fields into JSON for
//! every request cost more than the rest of the stack's bookkeeping together, while most
//! requests log nothing. The JSON formatter instead reads them from the request's task-local
//! context when a line is actually written and puts them at the top level of the object.

use std::{
    io::IsTerminal,
    sync::atomic::{AtomicBool, Ordering},
};

use tracing::{Event, Subscriber};
use tracing_subscriber::{
    fmt::{
        self,
        format::{FormatEvent, FormatFields, Writer},
        FmtContext,
    },
    layer::SubscriberExt,
    registry::LookupSpan,
    util::SubscriberInitExt,
    EnvFilter,
};

use crate::context;

/// Set once the JSON formatter that adds the request fields itself is installed.
static FIELDS_ON_EVENTS: AtomicBool = AtomicBool::new(false);

/// Whether the request span may go without fields because the installed formatter adds
/// them to every line from the request context.
pub(crate) fn request_fields_on_events() -> bool {
    FIELDS_ON_EVENTS.load(Ordering::Relaxed)
}

/// The log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, coloured when on a terminal.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The format from `BAZAAR_LOG_FORMAT`, else text on a terminal and JSON otherwise.
    pub fn from_env() -> Self {
        match std::env::var("BAZAAR_LOG_FORMAT").ok().as_deref() {
            Some("json") => Self::Json,
            Some("text") => Self::Text,
            _ if std::io::stderr().is_terminal() => Self::Text,
            _ => Self::Json,
        }
    }
}

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("BAZAAR_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Json => {
            let json = fmt::format()
                .json()
                .with_current_span(true)
                .with_span_list(false);
            let installed = registry
                .with(
                    fmt::layer()
                        .json()
                        .event_format(RequestFieldsJson(json))
                        .with_writer(std::io::stderr),
                )
                .try_init();
            if installed.is_ok() {
                FIELDS_ON_EVENTS.store(true, Ordering::Relaxed);
            }
            installed
        }
        LogFormat::Text => registry
            .with(fmt::layer().with_target(false).with_writer(std::io::stderr))
            .try_init(),
    };
}

/// The JSON event format with the current request's fields added at the top level.
struct RequestFieldsJson<F>(F);

impl<S, N, F> FormatEvent<S, N> for RequestFieldsJson<F>
where
    F: FormatEvent<S, N>,
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let Some(fields) = context::with_current_full(request_fields_json) else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => {
                writer.write_char('{')?;
                writer.write_str(&fields)?;
                if !rest.trim_start().starts_with('}') {
                    writer.write_char(',')?;
                }
                writer.write_str(rest)
            }
            None => writer.write_str(&line),
        }
    }
}

/// `"trace_id":"…","request_id":"…",…` (no braces) for the request being served.
fn request_fields_json(current: &context::Current) -> String {
    let ctx = &current.ctx;
    let mut out = String::with_capacity(160);
    let mut field = |name: &str, value: &str| {
        if !out.is_empty() {
            out.push(',');
        }
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
        out.push_str(&serde_json::Value::from(value).to_string());
    };
    if let Some(log) = &current.log {
        field("service", log.service);
        field("method", log.method.as_str());
        field("route", log.route.as_str());
    }
    field("trace_id", &ctx.trace_id);
    field("request_id", &ctx.request_id);
    out
}

/// For tests: silent unless `TEST_LOG` is set.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        init(LogFormat::Text);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::context::{Current, LogFields, RequestContext, RouteName};

    #[test]
    fn request_fields_make_valid_json_members() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-request-id", http::HeaderValue::from_static("req-1"));
        let current = Current {
            ctx: RequestContext::from_headers(&headers, "/a\"b"),
            log: Some(LogFields {
                service: "gateway",
                method: http::Method::from_bytes(b"PURGE").unwrap(),
                route: RouteName::Unmatched,
            }),
        };
        let members = request_fields_json(&current);
        let v: serde_json::Value = serde_json::from_str(&format!("{{{members}}}")).unwrap();
        assert_eq!(v["request_id"], "req-1");
        assert_eq!(v["trace_id"], current.ctx.trace_id.as_str());
        assert_eq!(v["service"], "gateway");
        assert_eq!(v["method"], "PURGE");
        assert_eq!(v["route"], "unmatched");
    }
}
