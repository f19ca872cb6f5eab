//! How the load generator's client reacts to an answer, like a real client would: retry the
//! same request (same `Idempotency-Key`, the byte-identical body) after a transport error or
//! a 5xx with exponential backoff, wait out a 429, log in again after a 401 — and never
//! repeat a request that is not idempotent after an answer that leaves its effect unknown.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::record::Op;

/// Attempts of one request at most (the first one included).
pub const MAX_ATTEMPTS: u32 = 6;
/// The delay before the second attempt; it doubles with each attempt after that.
pub const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// The longest backoff (before jitter) and the longest `Retry-After` honoured.
pub const BACKOFF_CAP: Duration = Duration::from_secs(2);

/// Why a request got no HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportError {
    /// No answer within the client's per-request timeout.
    Timeout,
    /// The connection could not be made (refused, unreachable): the request was not sent.
    Connect,
    /// The connection broke while the request or its answer was under way.
    Reset,
    /// Anything else (a malformed answer, a body that could not be read…).
    Other,
}

/// What one attempt got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP answer, with its `Retry-After` when it had one.
    Status(u16, Option<Duration>),
    /// No HTTP answer.
    Transport(TransportError),
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The answer is the request's final answer.
    Final,
    /// Send the same request again after this delay (jitter not included).
    Retry(Duration),
    /// Log the user in again, then send the request once more with the new token.
    Relogin,
}

/// Whether a repeated request has the effect of one: every request the load generator sends
/// is, except a restock (each one adds stock).
pub fn idempotent(op: Op) -> bool {
    op != Op::Restock
}

/// The decision after attempt number `attempt` (1-based) of `op` got `outcome`.
/// `may_relogin`: the request carried a user's token and has not been re-sent after a 401 yet.
pub fn decide(op: Op, outcome: Outcome, attempt: u32, may_relogin: bool) -> Decision {
    if attempt >= MAX_ATTEMPTS {
        return Decision::Final;
    }
    match outcome {
        Outcome::Status(401, _) if may_relogin => Decision::Relogin,
        Outcome::Status(429, retry_after) => {
            Decision::Retry(retry_after.map_or_else(|| backoff(attempt), |d| d.min(BACKOFF_CAP)))
        }
        // The request may or may not have taken effect: only an idempotent one is repeated.
        Outcome::Status(500..=599, _) if idempotent(op) => Decision::Retry(backoff(attempt)),
        Outcome::Status(..) => Decision::Final,
        // Not sent at all: safe to send again, whatever the request.
        Outcome::Transport(TransportError::Connect) => Decision::Retry(backoff(attempt)),
        Outcome::Transport(_) if idempotent(op) => Decision::Retry(backoff(attempt)),
        Outcome::Transport(_) => Decision::Final,
    }
}

/// The delay after attempt `attempt` (1-based): 100 ms · 2^(attempt−1), at most 2 s.
pub fn backoff(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    BACKOFF_BASE.saturating_mul(1 << doublings).min(BACKOFF_CAP)
}

/// `delay` plus a random 0–50 % of it, so clients that failed together do not retry together.
pub fn with_jitter(delay: Duration, rng: &mut impl Rng) -> Duration {
    delay + delay.mul_f64(rng.gen_range(0.0..=0.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_OPS: [Op; 9] = [
        Op::PlaceOrder,
        Op::Cancel,
        Op::Browse,
        Op::GetProduct,
        Op::ListOrders,
        Op::Overview,
        Op::Register,
        Op::Token,
        Op::Restock,
    ];

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn backoff_doubles_from_100_ms_up_to_2_s() {
        let delays: Vec<Duration> = (1..=7).map(backoff).collect();
        assert_eq!(
            delays,
            [
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1600),
                ms(2000),
                ms(2000)
            ]
        );
        assert_eq!(backoff(1000), ms(2000));
    }

    #[test]
    fn jitter_adds_at_most_half_the_delay() {
        let mut rng = rand::thread_rng();
        for _ in 0..1000 {
            let d = with_jitter(ms(400), &mut rng);
            assert!((ms(400)..=ms(600)).contains(&d), "{d:?}");
        }
    }

    #[test]
    fn success_and_client_errors_are_final_answers() {
        for op in ALL_OPS {
            for status in [200, 201, 202, 204, 302, 400, 403, 404, 409, 422] {
                assert_eq!(
                    decide(op, Outcome::Status(status, None), 1, true),
                    Decision::Final,
                    "{op:?} {status}"
                );
            }
        }
    }

    #[test]
    fn transport_errors_and_5xx_are_retried_with_backoff_up_to_six_attempts() {
        for op in ALL_OPS.into_iter().filter(|op| *op != Op::Restock) {
            for outcome in [
                Outcome::Status(500, None),
                Outcome::Status(502, None),
                Outcome::Status(503, Some(ms(1000))),
                Outcome::Status(504, None),
                Outcome::Transport(TransportError::Timeout),
                Outcome::Transport(TransportError::Connect),
                Outcome::Transport(TransportError::Reset),
                Outcome::Transport(TransportError::Other),
            ] {
                assert_eq!(
                    decide(op, outcome, 1, true),
                    Decision::Retry(ms(100)),
                    "{op:?} {outcome:?}"
                );
                assert_eq!(decide(op, outcome, 3, true), Decision::Retry(ms(400)));
                assert_eq!(decide(op, outcome, 5, true), Decision::Retry(ms(1600)));
                assert_eq!(decide(op, outcome, 6, true), Decision::Final);
            }
        }
    }

    #[test]
    fn a_429_waits_for_retry_after_capped_at_2_s() {
        let op = Op::PlaceOrder;
        assert_eq!(
            decide(op, Outcome::Status(429, Some(ms(1000))), 1, true),
            Decision::Retry(ms(1000))
        );
        assert_eq!(
            decide(op, Outcome::Status(429, Some(ms(30_000))), 1, true),
            Decision::Retry(ms(2000))
        );
        assert_eq!(
            decide(op, Outcome::Status(429, None), 2, true),
            Decision::Retry(ms(200))
        );
        assert_eq!(
            decide(op, Outcome::Status(429, Some(ms(1000))), 6, true),
            Decision::Final
        );
    }

    #[test]
    fn a_401_logs_in_again_once() {
        assert_eq!(
            decide(Op::PlaceOrder, Outcome::Status(401, None), 1, true),
            Decision::Relogin
        );
        assert_eq!(
            decide(Op::PlaceOrder, Outcome::Status(401, None), 2, false),
            Decision::Final
        );
        // A login's own 401 (wrong password) is its answer.
        assert_eq!(
            decide(Op::Token, Outcome::Status(401, None), 1, false),
            Decision::Final
        );
    }

    #[test]
    fn a_restock_is_never_repeated_after_an_ambiguous_failure() {
        for outcome in [
            Outcome::Status(500, None),
            Outcome::Status(502, None),
            Outcome::Status(503, None),
            Outcome::Status(504, None),
            Outcome::Transport(TransportError::Timeout),
            Outcome::Transport(TransportError::Reset),
            Outcome::Transport(TransportError::Other),
        ] {
            assert_eq!(
                decide(Op::Restock, outcome, 1, true),
                Decision::Final,
                "{outcome:?}"
            );
        }
        // Refused before it was sent, or refused by the rate limit: it did nothing yet.
        assert_eq!(
            decide(
                Op::Restock,
                Outcome::Transport(TransportError::Connect),
                1,
                true
            ),
            Decision::Retry(ms(100))
        );
        assert_eq!(
            decide(Op::Restock, Outcome::Status(429, Some(ms(1000))), 1, true),
            Decision::Retry(ms(1000))
        );
    }
}
