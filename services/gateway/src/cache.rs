//! A short-TTL, bounded, in-memory cache for anonymous `GET` responses.
//!
//! It exists to absorb bursts on hot public reads (the product list, the JWKS), not to be a
//! CDN: entries live for the route's `cache_ttl_ms`, only `200` responses to requests without
//! an `Authorization` header are stored (so nothing personal is ever cached), and a response
//! that says `Cache-Control: no-store`/`private`/`no-cache`, sets a cookie or varies by a
//! request header is never stored. The key is the request's path and query; `HEAD` is
//! answered from the `GET` entry. Bounded three ways: entries, bytes per entry, bytes in all.
//!
//! A miss streams the upstream body to the client as it arrives and keeps a copy on the side
//! ([`RecordingBody`]); the entry is stored only when the whole body has been seen.

use std::{
    collections::{hash_map::RandomState, HashMap},
    hash::BuildHasher,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{ready, Context, Poll},
    time::{Duration, Instant},
};

use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, StatusCode};
use http_body::{Body, Frame, SizeHint};

/// Entries kept at most, unless told otherwise.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;
/// Bodies larger than this are never stored.
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;
/// Bytes kept at most over all entries, unless told otherwise.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

const SHARDS: usize = 16;

/// A stored response.
#[derive(Debug)]
pub struct Stored {
    /// Always 200 today; kept so the entry is a complete response.
    pub status: StatusCode,
    /// The upstream's end-to-end headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// When it was stored (for `Age`).
    pub stored_at: Instant,
    /// When it stops being served.
    pub expires_at: Instant,
}

impl Stored {
    fn cost(&self, key: &str) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 32)
            .sum();
        key.len() + headers + self.body.len() + 128
    }
}

/// The response cache. Shared by all routes; one per gateway.
pub struct ResponseCache {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    max_entries_per_shard: usize,
    max_bytes_per_shard: usize,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Shard {
    entries: HashMap<Box<str>, Arc<Stored>>,
    bytes: usize,
}

impl Shard {
    fn remove(&mut self, key: &str) {
        if let Some(old) = self.entries.remove(key) {
            self.bytes = self.bytes.saturating_sub(old.cost(key));
        }
    }
}

impl Default for ResponseCache {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_ENTRIES, DEFAULT_MAX_BYTES)
    }
}

impl ResponseCache {
    /// A cache holding at most about `max_entries` responses and `max_bytes` bytes.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        let shards = (0..SHARDS)
            .map(|_| Mutex::new(Shard::default()))
            .collect::<Vec<_>>()
            .into_boxed_slice();
        Self {
            shards,
            hasher: RandomState::new(),
            max_entries_per_shard: max_entries.div_ceil(SHARDS).max(1),
            max_bytes_per_shard: max_bytes.div_ceil(SHARDS).max(MAX_ENTRY_BYTES),
        }
    }

    fn shard(&self, key: &str) -> &Mutex<Shard> {
        &self.shards[self.hasher.hash_one(key) as usize % SHARDS]
    }

    /// The fresh entry for `key`, if any (an expired one is dropped on the way).
    pub fn get(&self, key: &str, now: Instant) -> Option<Arc<Stored>> {
        let mut shard = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        let entry = shard.entries.get(key)?;
        if entry.expires_at > now {
            return Some(entry.clone());
        }
        shard.remove(key);
        None
    }

    /// Stores `stored` under `key`, evicting expired and then arbitrary entries to stay in
    /// bounds.
    pub fn insert(&self, key: &str, stored: Stored) {
        let cost = stored.cost(key);
        if stored.body.len() > MAX_ENTRY_BYTES || cost > self.max_bytes_per_shard {
            return;
        }
        let now = Instant::now();
        let mut shard = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        shard.remove(key);
        if shard.entries.len() >= self.max_entries_per_shard
            || shard.bytes + cost > self.max_bytes_per_shard
        {
            let Shard { entries, bytes } = &mut *shard;
            entries.retain(|k, v| {
                let keep = v.expires_at > now;
                if !keep {
                    *bytes = bytes.saturating_sub(v.cost(k));
                }
                keep
            });
        }
        while shard.entries.len() >= self.max_entries_per_shard
            || shard.bytes + cost > self.max_bytes_per_shard
        {
            let Some(victim) = shard.entries.keys().next().cloned() else {
                break;
            };
            shard.remove(&victim);
        }
        shard.bytes += cost;
        shard.entries.insert(Box::from(key), Arc::new(stored));
    }

    /// Entries held (fresh or not yet noticed to be expired).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).entries.len())
            .sum()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether an upstream response may be stored, judging by its headers.
pub(crate) fn is_storable(headers: &HeaderMap) -> bool {
    if headers.contains_key(header::SET_COOKIE) || headers.contains_key(header::VARY) {
        return false;
    }
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
    {
        if len > MAX_ENTRY_BYTES {
            return false;
        }
    }
    !headers.get_all(header::CACHE_CONTROL).iter().any(|v| {
        v.to_str().map_or(true, |s| {
            s.split(',').any(|d| {
                let d = d.trim();
                ["no-store", "private", "no-cache"]
                    .iter()
                    .any(|bad| d.eq_ignore_ascii_case(bad))
            })
        })
    })
}

/// What a [`RecordingBody`] needs to store the response once it has seen all of it.
pub(crate) struct Recording {
    pub cache: Arc<ResponseCache>,
    pub key: Box<str>,
    pub headers: HeaderMap,
    pub ttl: Duration,
    chunks: Vec<Bytes>,
    size: usize,
}

impl Recording {
    pub(crate) fn new(
        cache: Arc<ResponseCache>,
        key: Box<str>,
        headers: HeaderMap,
        ttl: Duration,
    ) -> Self {
        Self {
            cache,
            key,
            headers,
            ttl,
            chunks: Vec::new(),
            size: 0,
        }
    }

    fn finish(self) {
        let body = match self.chunks.len() {
            0 => Bytes::new(),
            1 => self.chunks.into_iter().next().unwrap_or_default(),
            _ => {
                let mut buf = BytesMut::with_capacity(self.size);
                for c in &self.chunks {
                    buf.extend_from_slice(c);
                }
                buf.freeze()
            }
        };
        let now = Instant::now();
        let stored = Stored {
            status: StatusCode::OK,
            headers: self.headers,
            body,
            stored_at: now,
            expires_at: now + self.ttl,
        };
        self.cache.insert(&self.key, stored);
    }
}

/// Passes an upstream body through unchanged and stores a copy when it ends cleanly.
pub(crate) struct RecordingBody<B> {
    inner: B,
    recording: Option<Recording>,
}

impl<B: Body<Data = Bytes> + Unpin> RecordingBody<B> {
    pub(crate) fn new(inner: B, recording: Recording) -> Self {
        let mut this = Self {
            inner,
            recording: Some(recording),
        };
        if this.inner.is_end_stream() {
            this.finish();
        }
        this
    }

    fn finish(&mut self) {
        if let Some(r) = self.recording.take() {
            r.finish();
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for RecordingBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(data) = f.data_ref() {
                    if let Some(r) = &mut this.recording {
                        if r.size + data.len() > MAX_ENTRY_BYTES {
                            this.recording = None;
                        } else {
                            r.size += data.len();
                            r.chunks.push(data.clone());
                        }
                    }
                    // With a known length the server stops polling once the body says it has
                    // ended, so the end may never be seen as `None`.
                    if this.inner.is_end_stream() {
                        this.finish();
                    }
                } else {
                    // Trailers are not stored; a response carrying them is not cached.
                    this.recording = None;
                }
            }
            Some(Err(_)) => this.recording = None,
            None => this.finish(),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use http_body_util::{BodyExt, Full};

    fn stored(body: &'static str, ttl: Duration) -> Stored {
        let now = Instant::now();
        Stored {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from(body),
            stored_at: now,
            expires_at: now + ttl,
        }
    }

    #[test]
    fn serves_until_the_ttl_passes() {
        let c = ResponseCache::default();
        c.insert("/p?q=1", stored("x", Duration::from_secs(5)));
        let now = Instant::now();
        assert_eq!(c.get("/p?q=1", now).unwrap().body, "x");
        assert!(c.get("/p?q=2", now).is_none());
        assert!(c.get("/p?q=1", now + Duration::from_secs(6)).is_none());
        assert!(c.is_empty(), "an expired entry is dropped when found");
    }

    #[test]
    fn stays_within_its_entry_bound() {
        let c = ResponseCache::new(64, DEFAULT_MAX_BYTES);
        for i in 0..1000 {
            c.insert(&format!("/p/{i}"), stored("x", Duration::from_secs(60)));
        }
        assert!(c.len() <= 64, "{}", c.len());
    }

    #[test]
    fn stays_within_its_byte_bound() {
        let c = ResponseCache::new(10_000, SHARDS * MAX_ENTRY_BYTES);
        let big: &'static str = Box::leak("y".repeat(200 * 1024).into_boxed_str());
        for i in 0..200 {
            c.insert(&format!("/p/{i}"), stored(big, Duration::from_secs(60)));
        }
        assert!(c.len() <= SHARDS, "{}", c.len());
    }

    #[test]
    fn refuses_private_or_personal_responses() {
        let mut h = HeaderMap::new();
        assert!(is_storable(&h));
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=5, Private"),
        );
        assert!(!is_storable(&h));
        let mut h = HeaderMap::new();
        h.insert(header::SET_COOKIE, HeaderValue::from_static("a=b"));
        assert!(!is_storable(&h));
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from(MAX_ENTRY_BYTES + 1),
        );
        assert!(!is_storable(&h));
    }

    #[tokio::test]
    async fn a_recorded_body_is_stored_once_it_has_been_read() {
        let cache = Arc::new(ResponseCache::default());
        let rec = Recording::new(
            cache.clone(),
            "/k".into(),
            HeaderMap::new(),
            Duration::from_secs(5),
        );
        let body = RecordingBody::new(Full::new(Bytes::from_static(b"hello")), rec);
        assert!(cache.get("/k", Instant::now()).is_none());
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes, "hello");
        assert_eq!(cache.get("/k", Instant::now()).unwrap().body, "hello");
    }
}
