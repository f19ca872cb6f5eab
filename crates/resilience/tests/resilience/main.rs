//! Black-box tests of the resilience layers, in one binary. Time is tokio's paused clock
//! except in `http`, which talks to a real loopback server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod breaker;
mod breaker_model;
mod bulkhead;
mod fallback;
mod http;
mod retry;
mod stack;
mod timeout;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bazaar_resilience::{lift, ResilienceError};
use tower::util::BoxCloneService;

/// The error of the scripted service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boom {
    pub retryable: bool,
}

impl std::fmt::Display for Boom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "boom at 10.0.0.7:9000 (internal detail)")
    }
}

impl std::error::Error for Boom {}

/// What the scripted service does on its `n`th call (0-based).
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// Answers `n` at once.
    Ok,
    /// Fails at once.
    Fail { retryable: bool },
    /// Sleeps, then answers `n`.
    Sleep(Duration),
}

/// How many times the scripted service was called.
#[derive(Debug, Clone, Default)]
pub struct Calls(Arc<AtomicUsize>);

impl Calls {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

pub type Scripted<Req> = BoxCloneService<Req, usize, ResilienceError<Boom>>;

/// A service whose `n`th call does `script(n)`, lifted into `ResilienceError`.
pub fn scripted<Req: Send + 'static>(
    script: impl Fn(usize) -> Step + Send + Sync + 'static,
) -> (Scripted<Req>, Calls) {
    let calls = Calls::default();
    let counter = calls.clone();
    let script = Arc::new(script);
    let service = tower::service_fn(move |_req: Req| {
        let n = counter.0.fetch_add(1, Ordering::SeqCst);
        let step = script(n);
        async move {
            match step {
                Step::Ok => Ok(n),
                Step::Fail { retryable } => Err(Boom { retryable }),
                Step::Sleep(d) => {
                    tokio::time::sleep(d).await;
                    Ok(n)
                }
            }
        }
    });
    (BoxCloneService::new(lift(service)), calls)
}
