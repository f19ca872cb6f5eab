//! The producer's event feed: `GET /internal/events`, a paged, long-polling read of its
//! relayed outbox.
//!
//! `?after=<pos>&limit=<1..500>&wait=<seconds ≤ 30>&types=<comma list>` answers
//! `{"events":[{"pos":n,"event":{…envelope…}}],"head":h}`: the events after `after` in feed
//! order (only those of `types`, when given), and `head`, the largest position when the
//! request was answered. When fewer than `limit` events came, every matching event up to
//! `head` is in the answer, so a consumer may move its cursor to `head` (past events it did
//! not ask for). With nothing after `after`, the request waits up to `wait` seconds for the
//! relay to hand out a new position.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use bazaar_runtime::Problem;
use http::{header, HeaderValue, Uri};
use sqlx::Row;

use crate::bus::Inner;

/// The most events one feed page holds.
pub const MAX_FEED_LIMIT: u32 = 500;
/// The longest a feed request waits for new events, in seconds.
pub const MAX_FEED_WAIT_SECS: u32 = 30;
/// Events per page when `limit` is not given.
pub const DEFAULT_FEED_LIMIT: u32 = 100;
/// The most types one request may filter on.
pub const MAX_FEED_TYPES: usize = 64;
/// The longest event type name accepted in `types`.
pub const MAX_TYPE_LEN: usize = 200;

/// The parameters of a feed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedQuery {
    /// Events after this position (0 = from the start).
    pub after: i64,
    /// At most this many events (1–500).
    pub limit: u32,
    /// Seconds to wait when nothing is after `after` (0–30).
    pub wait: u32,
    /// Only these event types; empty = all.
    pub types: Vec<String>,
}

impl Default for FeedQuery {
    fn default() -> Self {
        FeedQuery {
            after: 0,
            limit: DEFAULT_FEED_LIMIT,
            wait: 0,
            types: Vec::new(),
        }
    }
}

/// A feed query parameter that is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad query parameter {param}: {reason}")]
pub struct FeedQueryError {
    /// The parameter.
    pub param: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

fn bad(param: &'static str, reason: &'static str) -> FeedQueryError {
    FeedQueryError { param, reason }
}

impl FeedQuery {
    /// Parses a URL query string (unknown parameters are ignored; a repeated one counts once,
    /// the last).
    pub fn parse(query: &str) -> Result<FeedQuery, FeedQueryError> {
        let mut q = FeedQuery::default();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "after" => {
                    q.after = value
                        .parse::<i64>()
                        .ok()
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| bad("after", "must be an integer ≥ 0"))?;
                }
                "limit" => {
                    q.limit = value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=MAX_FEED_LIMIT).contains(n))
                        .ok_or_else(|| bad("limit", "must be an integer from 1 to 500"))?;
                }
                "wait" => {
                    q.wait = value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| *n <= MAX_FEED_WAIT_SECS)
                        .ok_or_else(|| bad("wait", "must be an integer from 0 to 30"))?;
                }
                "types" => {
                    let types: Vec<String> = value
                        .split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                        .collect();
                    if types.len() > MAX_FEED_TYPES {
                        return Err(bad("types", "names at most 64 types"));
                    }
                    if !types.iter().all(|t| is_type_name(t)) {
                        return Err(bad(
                            "types",
                            "must be a comma-separated list of event types ([A-Za-z0-9._-], at most 200 characters each)",
                        ));
                    }
                    q.types = types;
                }
                _ => {}
            }
        }
        Ok(q)
    }

    /// The query string of this request (the inverse of [`FeedQuery::parse`]).
    pub fn to_query_string(&self) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        s.append_pair("after", &self.after.to_string())
            .append_pair("limit", &self.limit.to_string())
            .append_pair("wait", &self.wait.to_string());
        if !self.types.is_empty() {
            s.append_pair("types", &self.types.join(","));
        }
        s.finish()
    }
}

/// Whether `t` is acceptable as an event type in a feed filter.
pub(crate) fn is_type_name(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= MAX_TYPE_LEN
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// `GET /internal/events`.
pub(crate) async fn serve(State(inner): State<Arc<Inner>>, uri: Uri) -> Response {
    let q = match FeedQuery::parse(uri.query().unwrap_or_default()) {
        Ok(q) => q,
        Err(e) => return Problem::malformed(format!("{e}.")).into_response(),
    };
    match long_poll(&inner, &q).await {
        Ok(body) => {
            let mut res = Response::new(axum::body::Body::from(body));
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            res
        }
        Err(e) => Problem::internal(&e).into_response(),
    }
}

async fn long_poll(inner: &Inner, q: &FeedQuery) -> Result<String, sqlx::Error> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(u64::from(q.wait));
    let mut woken = inner.head.subscribe();
    loop {
        woken.borrow_and_update();
        // The head is read before the page: every position up to it is committed, so a page
        // of fewer than `limit` events holds every matching event up to it.
        let head = crate::relay::read_head(&inner.db).await?;
        let events = if head > q.after {
            page(inner, q).await?
        } else {
            Vec::new()
        };
        if !events.is_empty() || head > q.after || tokio::time::Instant::now() >= deadline {
            return Ok(render(&events, head));
        }
        tokio::select! {
            () = inner.stop.cancelled() => return Ok(render(&[], head)),
            r = tokio::time::timeout_at(deadline, woken.changed()) => {
                if !matches!(r, Ok(Ok(()))) {
                    // The deadline passed (or the relay is gone): answer what there is.
                    return Ok(render(&[], head));
                }
            }
        }
    }
}

async fn page(inner: &Inner, q: &FeedQuery) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let mut sql = String::from("SELECT pos, envelope FROM msg_outbox WHERE pos > $1");
    if !q.types.is_empty() {
        sql.push_str(" AND type IN (");
        for i in 0..q.types.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(i + 3).to_string());
        }
        sql.push(')');
    }
    sql.push_str(" ORDER BY pos LIMIT $2");
    let mut query = sqlx::query(&sql).bind(q.after).bind(i64::from(q.limit));
    for t in &q.types {
        query = query.bind(t);
    }
    query
        .fetch_all(inner.db.reader())
        .await?
        .iter()
        .map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?)))
        .collect()
}

/// The page as JSON; envelopes are embedded as stored (they are JSON written by `publish`).
fn render(events: &[(i64, String)], head: i64) -> String {
    let mut out =
        String::with_capacity(32 + events.iter().map(|(_, e)| e.len() + 32).sum::<usize>());
    out.push_str("{\"events\":[");
    for (i, (pos, env)) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"pos\":");
        out.push_str(&pos.to_string());
        out.push_str(",\"event\":");
        out.push_str(env);
        out.push('}');
    }
    out.push_str("],\"head\":");
    out.push_str(&head.to_string());
    out.push('}');
    out
}

/// A feed page as a consumer reads it (each event is checked on its own, so one malformed
/// envelope cannot block the page).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct FeedPage {
    pub(crate) events: Vec<FeedItem>,
    pub(crate) head: i64,
}

/// One event of a feed page.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct FeedItem {
    pub(crate) pos: i64,
    pub(crate) event: serde_json::Value,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(FeedQuery::parse("").unwrap(), FeedQuery::default());
        let q = FeedQuery::parse("after=7&limit=500&wait=30&types=a.b.v1,,c.d.v1&x=y").unwrap();
        assert_eq!(q.after, 7);
        assert_eq!(q.limit, 500);
        assert_eq!(q.wait, 30);
        assert_eq!(q.types, vec!["a.b.v1", "c.d.v1"]);
        for bad in [
            "after=-1",
            "after=x",
            "limit=0",
            "limit=501",
            "wait=31",
            "wait=-1",
            "types=a%20b",
            "types=a;b",
        ] {
            assert!(FeedQuery::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn renders_pages_that_consumers_parse() {
        let body = render(&[(3, r#"{"id":"x"}"#.into()), (5, "{}".into())], 9);
        let page: FeedPage = serde_json::from_str(&body).unwrap();
        assert_eq!(page.head, 9);
        assert_eq!(page.events.len(), 2);
        assert_eq!(page.events[1].pos, 5);
        assert_eq!(page.events[0].event["id"], "x");
        let empty: FeedPage = serde_json::from_str(&render(&[], 0)).unwrap();
        assert!(empty.events.is_empty());
    }

    proptest! {
        #[test]
        fn valid_queries_round_trip(
            after in 0i64..i64::MAX,
            limit in 1u32..=MAX_FEED_LIMIT,
            wait in 0u32..=MAX_FEED_WAIT_SECS,
            types in proptest::collection::vec("[A-Za-z0-9._-]{1,40}", 0..5),
        ) {
            let q = FeedQuery { after, limit, wait, types };
            prop_assert_eq!(FeedQuery::parse(&q.to_query_string()).unwrap(), q);
        }

        #[test]
        fn parsing_never_panics(s in ".{0,120}") {
            if let Ok(q) = FeedQuery::parse(&s) {
                prop_assert!(q.after >= 0);
                prop_assert!((1..=MAX_FEED_LIMIT).contains(&q.limit));
                prop_assert!(q.wait <= MAX_FEED_WAIT_SECS);
                prop_assert!(q.types.iter().all(|t| is_type_name(t)));
            }
        }
    }
}
