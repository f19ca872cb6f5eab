//! Rate limiting: token buckets per caller, behind the [`RateLimiter`] trait.
//!
//! The key is the user (`sub`) when the request carries a valid token, else the client's IP
//! address as the socket saw it (a client-sent `X-Forwarded-For` is never trusted: the gateway
//! is the edge). Every decision reports the limit, what remains and when the bucket is full
//! again, which the proxy turns into `RateLimit-Limit`, `RateLimit-Remaining`,
//! `RateLimit-Reset` and, when refused, `Retry-After`.
//!
//! The limiter is written here rather than taken from a crate because we need exactly those
//! three numbers from every decision (most limiters answer only yes/no), and because a
//! Redis-backed variant for several gateways must slot in behind the same trait later; the
//! trait's [`Check`] future is free for the in-memory limiter (no allocation, no await).

use std::{
    fmt,
    future::Future,
    net::IpAddr,
    pin::Pin,
    str::FromStr,
    task::{Context, Poll},
};

mod bucket;
mod memory;

pub use memory::{InMemoryRateLimiter, DEFAULT_MAX_KEYS};

/// The environment variable with the per-user rate (`100/s,burst=200`).
pub const USER_ENV: &str = "BAZAAR_RATE_LIMIT_USER";
/// The environment variable with the per-anonymous-IP rate (`50/s,burst=100`).
pub const ANON_ENV: &str = "BAZAAR_RATE_LIMIT_ANON";

/// A token bucket's shape: it refills at `per_second` up to `burst` tokens; a request takes one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sustained requests per second (> 0; fractions allowed: `0.5` is one every two seconds).
    pub per_second: f64,
    /// Bucket capacity: how many requests may come at once after a quiet spell (≥ 1).
    pub burst: u32,
}

/// Why a rate could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    /// The text is not of the form `<n>/s[,burst=<m>]` or `<n>`.
    #[error(
        "expected `<requests>/s,burst=<n>` (e.g. `100/s,burst=200`) or `<requests>`, got `{0}`"
    )]
    Syntax(String),
    /// The rate is not a positive, finite number of at most one billion.
    #[error(
        "the rate must be a number greater than 0 and at most 1000000000 per second, got `{0}`"
    )]
    PerSecond(String),
    /// The burst is not an integer between 1 and one billion.
    #[error("the burst must be a whole number between 1 and 1000000000, got `{0}`")]
    Burst(String),
    /// An environment variable held a bad rate.
    #[error("{var}: {source}")]
    Env {
        /// The variable.
        var: &'static str,
        /// What is wrong with its value.
        #[source]
        source: Box<RateError>,
    },
}

const MAX_RATE: f64 = 1e9;
const MAX_BURST: u32 = 1_000_000_000;

impl Rate {
    /// A rate, checked: `per_second` in (0, 1e9], `burst` in [1, 1e9].
    pub fn new(per_second: f64, burst: u32) -> Result<Rate, RateError> {
        if !(per_second.is_finite() && per_second > 0.0 && per_second <= MAX_RATE) {
            return Err(RateError::PerSecond(per_second.to_string()));
        }
        if !(1..=MAX_BURST).contains(&burst) {
            return Err(RateError::Burst(burst.to_string()));
        }
        Ok(Rate { per_second, burst })
    }

    /// Parses `100/s,burst=200`, `100/s` or `100` (the last two mean a burst of twice the
    /// rate, at least 1). Spaces around the parts are ignored.
    pub fn parse(text: &str) -> Result<Rate, RateError> {
        let syntax = || RateError::Syntax(text.to_owned());
        let mut parts = text.split(',');
        let first = parts.next().unwrap_or_default().trim();
        let number = first.strip_suffix("/s").map_or(first, str::trim_end);
        if number.is_empty() {
            return Err(syntax());
        }
        let per_second: f64 = number.parse().map_err(|_| {
            if number
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
            {
                RateError::PerSecond(number.to_owned())
            } else {
                syntax()
            }
        })?;
        let burst = match parts.next() {
            None => {
                if !(per_second.is_finite() && per_second > 0.0 && per_second <= MAX_RATE) {
                    return Err(RateError::PerSecond(number.to_owned()));
                }
                // Saturating float-to-int conversion; in range because the rate is.
                (per_second * 2.0).ceil().clamp(1.0, f64::from(MAX_BURST)) as u32
            }
            Some(part) => {
                let value = part
                    .trim()
                    .strip_prefix("burst")
                    .map(str::trim_start)
                    .and_then(|r| r.strip_prefix('='));
                let value = value.ok_or_else(syntax)?.trim();
                value
                    .parse::<u32>()
                    .map_err(|_| RateError::Burst(value.to_owned()))?
            }
        };
        if parts.next().is_some() {
            return Err(syntax());
        }
        Rate::new(per_second, burst)
    }
}

impl FromStr for Rate {
    type Err = RateError;

    fn from_str(s: &str) -> Result<Rate, RateError> {
        Rate::parse(s)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s,burst={}", self.per_second, self.burst)
    }
}

/// The default limits: one rate for authenticated users, one for anonymous client IPs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    /// Per user (`sub` of a valid token). Default 100/s, burst 200.
    pub user: Rate,
    /// Per client IP without a token. Default 50/s, burst 100.
    pub anon: Rate,
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits {
            user: Rate {
                per_second: 100.0,
                burst: 200,
            },
            anon: Rate {
                per_second: 50.0,
                burst: 100,
            },
        }
    }
}

impl RateLimits {
    /// The defaults, overridden by [`USER_ENV`] and [`ANON_ENV`] when set; a bad value is an
    /// error naming the variable.
    pub fn from_env() -> Result<RateLimits, RateError> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<RateLimits, RateError> {
        let mut limits = RateLimits::default();
        for (var, slot) in [(USER_ENV, &mut limits.user), (ANON_ENV, &mut limits.anon)] {
            if let Some(text) = lookup(var) {
                *slot = Rate::parse(&text).map_err(|e| RateError::Env {
                    var,
                    source: Box::new(e),
                })?;
            }
        }
        Ok(limits)
    }
}

/// Who is charged for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject<'a> {
    /// An authenticated user, by `sub`.
    User(&'a str),
    /// An anonymous client, by IP address.
    Ip(IpAddr),
}

/// A bucket's identity: the subject within a scope. The default limits share the empty scope;
/// a route with its own limit is its own scope, so its bucket does not drain the default one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateKey<'a> {
    /// `""` for the default limits, else the route's prefix.
    pub scope: &'a str,
    /// Who.
    pub subject: Subject<'a>,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The bucket capacity (`RateLimit-Limit`).
    pub limit: u32,
    /// Whole tokens left after this request (`RateLimit-Remaining`).
    pub remaining: u32,
    /// Seconds until the bucket is full again, rounded up (`RateLimit-Reset`).
    pub reset_secs: u64,
    /// When refused: seconds until one token is back, rounded up, at least 1 (`Retry-After`).
    pub retry_after_secs: u64,
}

/// Decides whether a request may proceed and reports the bucket's state.
pub trait RateLimiter: Send + Sync + 'static {
    /// Takes one token from the bucket of `key` shaped by `rate`.
    fn check<'a>(&'a self, key: RateKey<'a>, rate: Rate) -> Check<'a>;
}

/// The answer of [`RateLimiter::check`]: ready at once for in-memory limiters, a boxed future
/// for remote ones (a shared Redis), so the trait stays object-safe without costing the
/// in-memory path an allocation.
pub struct Check<'a>(CheckInner<'a>);

enum CheckInner<'a> {
    Ready(Option<Decision>),
    Pending(Pin<Box<dyn Future<Output = Decision> + Send + 'a>>),
}

impl<'a> Check<'a> {
    /// An answer known already.
    pub fn ready(decision: Decision) -> Check<'a> {
        Check(CheckInner::Ready(Some(decision)))
    }

    /// An answer that needs I/O.
    pub fn pending(fut: impl Future<Output = Decision> + Send + 'a) -> Check<'a> {
        Check(CheckInner::Pending(Box::pin(fut)))
    }
}

impl Future for Check<'_> {
    type Output = Decision;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Decision> {
        match &mut self.get_mut().0 {
            CheckInner::Ready(decision) => match decision.take() {
                Some(d) => Poll::Ready(d),
                // Polled after completion: a caller bug; stay pending rather than panic.
                None => Poll::Pending,
            },
            CheckInner::Pending(fut) => fut.as_mut().poll(cx),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(
            Rate::parse("100/s,burst=200").unwrap(),
            Rate {
                per_second: 100.0,
                burst: 200
            }
        );
        assert_eq!(
            Rate::parse(" 100/s , burst = 7 ").unwrap(),
            Rate {
                per_second: 100.0,
                burst: 7
            }
        );
        assert_eq!(
            Rate::parse("100").unwrap(),
            Rate {
                per_second: 100.0,
                burst: 200
            }
        );
        assert_eq!(
            Rate::parse("50/s").unwrap(),
            Rate {
                per_second: 50.0,
                burst: 100
            }
        );
        assert_eq!(
            Rate::parse("0.2").unwrap(),
            Rate {
                per_second: 0.2,
                burst: 1
            }
        );
        assert_eq!(
            "2.5/s,burst=3".parse::<Rate>().unwrap().to_string(),
            "2.5/s,burst=3"
        );
    }

    #[test]
    fn explains_what_is_wrong() {
        let msg = |s: &str| Rate::parse(s).unwrap_err().to_string();
        assert!(
            msg("fast").contains("expected `<requests>/s,burst=<n>`"),
            "{}",
            msg("fast")
        );
        assert!(msg("").contains("expected"));
        assert!(msg("0/s").contains("greater than 0"));
        assert!(msg("-1").contains("greater than 0"));
        assert!(msg("NaN").contains("greater than 0"));
        assert!(msg("10/s,burst=0").contains("burst must be"));
        assert!(msg("10/s,burst=x").contains("burst must be"));
        assert!(msg("10/s,bust=3").contains("expected"));
        assert!(msg("10/s,burst=3,x").contains("expected"));
        assert!(msg("10/m").contains("expected"));
    }

    #[test]
    fn env_overrides_name_the_variable() {
        let limits =
            RateLimits::from_lookup(|v| (v == USER_ENV).then(|| "7/s,burst=9".to_owned())).unwrap();
        assert_eq!(
            limits.user,
            Rate {
                per_second: 7.0,
                burst: 9
            }
        );
        assert_eq!(limits.anon, RateLimits::default().anon);
        let err =
            RateLimits::from_lookup(|v| (v == ANON_ENV).then(|| "lots".to_owned())).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("BAZAAR_RATE_LIMIT_ANON: expected"),
            "{err}"
        );
    }
}
