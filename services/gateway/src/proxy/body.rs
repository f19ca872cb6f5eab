//! The request body on its way upstream: streamed, limited, and reusable for a retry.
//!
//! A connect error means nothing was sent, so the request may go to another instance — but
//! the request (body included) is gone by then. The body therefore waits in a shared slot and
//! is taken out only on its first poll, which happens after the connection is up; after a
//! connect error it is still in the slot for the next attempt. Bodies that are empty need no
//! slot at all.
//!
//! While streaming, the body counts bytes and fails with [`RequestBodyError::TooLarge`] before
//! passing on the chunk that would cross the route's limit, so an upstream never receives
//! more than the limit and the proxy can answer 413.

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use axum::body::Body;
use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};

/// Why the request body could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestBodyError {
    /// The body grew past the route's limit.
    #[error("the request body is larger than the route allows")]
    TooLarge,
    /// Reading from the client failed (it went away, or sent a broken chunked body).
    #[error("the request body could not be read: {0}")]
    Read(#[source] axum::Error),
    /// A previous attempt already consumed the body (a bug if it ever happens).
    #[error("the request body was already sent")]
    Consumed,
}

type Slot = Arc<Mutex<Option<Body>>>;

/// The client's body, held for however many attempts the proxy makes.
pub(crate) struct PendingBody {
    slot: Option<Slot>,
    limit: u64,
    hint: SizeHint,
}

impl PendingBody {
    pub(crate) fn new(body: Body, limit: u64) -> PendingBody {
        let hint = body.size_hint();
        let slot = if body.is_end_stream() {
            None
        } else {
            Some(Arc::new(Mutex::new(Some(body))))
        };
        PendingBody { slot, limit, hint }
    }

    /// A body for the next attempt, or `None` if an earlier attempt has started sending it.
    pub(crate) fn attempt(&self) -> Option<UpstreamBody> {
        let Some(slot) = &self.slot else {
            return Some(UpstreamBody::empty());
        };
        if slot.lock().unwrap_or_else(|e| e.into_inner()).is_none() {
            return None;
        }
        Some(UpstreamBody {
            state: State::Waiting(slot.clone()),
            remaining: self.limit,
            hint: self.hint,
        })
    }
}

/// The body type of every upstream request.
pub(crate) struct UpstreamBody {
    state: State,
    remaining: u64,
    hint: SizeHint,
}

impl UpstreamBody {
    /// No body at all (which can be sent any number of times).
    pub(crate) fn empty() -> UpstreamBody {
        UpstreamBody {
            state: State::Empty,
            remaining: 0,
            hint: SizeHint::with_exact(0),
        }
    }
}

enum State {
    Empty,
    Waiting(Slot),
    Streaming(Body),
    Done,
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RequestBodyError>>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Empty | State::Done => return Poll::Ready(None),
                State::Waiting(slot) => {
                    let taken = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
                    match taken {
                        Some(body) => this.state = State::Streaming(body),
                        None => {
                            this.state = State::Done;
                            return Poll::Ready(Some(Err(RequestBodyError::Consumed)));
                        }
                    }
                }
                State::Streaming(body) => {
                    return match Pin::new(body).poll_frame(cx) {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(None) => {
                            this.state = State::Done;
                            Poll::Ready(None)
                        }
                        Poll::Ready(Some(Err(e))) => {
                            this.state = State::Done;
                            Poll::Ready(Some(Err(RequestBodyError::Read(e))))
                        }
                        Poll::Ready(Some(Ok(frame))) => {
                            let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                            if len > this.remaining {
                                this.state = State::Done;
                                return Poll::Ready(Some(Err(RequestBodyError::TooLarge)));
                            }
                            this.remaining -= len;
                            Poll::Ready(Some(Ok(frame)))
                        }
                    };
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.state {
            State::Empty | State::Done => true,
            State::Waiting(_) => false,
            State::Streaming(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            State::Empty | State::Done => SizeHint::with_exact(0),
            State::Waiting(_) => self.hint,
            State::Streaming(body) => body.size_hint(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn an_unsent_body_can_be_attempted_again() {
        let pending = PendingBody::new(Body::from("hello"), 100);
        drop(pending.attempt().unwrap());
        let bytes = pending
            .attempt()
            .unwrap()
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(bytes, "hello");
        assert!(
            pending.attempt().is_none(),
            "a sent body cannot be sent again"
        );
    }

    #[tokio::test]
    async fn a_body_past_the_limit_fails_before_the_offending_chunk() {
        let pending = PendingBody::new(Body::from("0123456789"), 5);
        let err = pending.attempt().unwrap().collect().await.unwrap_err();
        assert!(matches!(err, RequestBodyError::TooLarge));
        let pending = PendingBody::new(Body::from("01234"), 5);
        assert_eq!(
            pending
                .attempt()
                .unwrap()
                .collect()
                .await
                .unwrap()
                .to_bytes(),
            "01234"
        );
    }

    #[tokio::test]
    async fn an_empty_body_needs_no_slot() {
        let pending = PendingBody::new(Body::empty(), 5);
        for _ in 0..3 {
            let b = pending.attempt().unwrap();
            assert!(b.is_end_stream());
            assert_eq!(b.size_hint().exact(), Some(0));
        }
    }
}
