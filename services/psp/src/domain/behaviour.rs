//! How badly the processor behaves: the faults a test or an operator injects.

use std::time::Duration;

/// Why a behaviour is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BehaviourError {
    /// `latency_ms` above [`Behaviour::MAX_LATENCY_MS`].
    #[error("latency_ms must be from 0 to 60000")]
    Latency,
    /// `error_rate` outside 0–1.
    #[error("error_rate must be a number from 0 to 1")]
    ErrorRate,
}

/// Faults applied to every `/v1` call.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Behaviour {
    latency: Duration,
    error_rate: f64,
    down: bool,
}

impl Behaviour {
    /// The largest latency that can be injected.
    pub const MAX_LATENCY_MS: u64 = 60_000;

    /// A behaviour: `latency_ms` added to every call, `error_rate` (0–1) of the calls
    /// answered 503 without effect, or every call answered 503 at once when `down`.
    pub fn new(latency_ms: u64, error_rate: f64, down: bool) -> Result<Self, BehaviourError> {
        if latency_ms > Self::MAX_LATENCY_MS {
            return Err(BehaviourError::Latency);
        }
        if !(0.0..=1.0).contains(&error_rate) {
            return Err(BehaviourError::ErrorRate);
        }
        Ok(Self {
            latency: Duration::from_millis(latency_ms),
            error_rate,
            down,
        })
    }

    /// Added to every call.
    pub fn latency(&self) -> Duration {
        self.latency
    }

    /// The share of calls that fail.
    pub fn error_rate(&self) -> f64 {
        self.error_rate
    }

    /// Whether every call fails at once.
    pub fn down(&self) -> bool {
        self.down
    }

    /// Whether a call whose random draw (uniform in `[0, 1)`) is `draw` fails.
    pub fn fails(&self, draw: f64) -> bool {
        self.down || draw < self.error_rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_its_ranges() {
        assert!(Behaviour::new(0, 0.0, false).is_ok());
        assert!(Behaviour::new(60_000, 1.0, true).is_ok());
        assert_eq!(
            Behaviour::new(60_001, 0.0, false),
            Err(BehaviourError::Latency)
        );
        assert_eq!(
            Behaviour::new(0, 1.5, false),
            Err(BehaviourError::ErrorRate)
        );
        assert_eq!(
            Behaviour::new(0, f64::NAN, false),
            Err(BehaviourError::ErrorRate)
        );
    }

    #[test]
    fn the_error_rate_is_the_share_of_draws_that_fail() {
        let b = Behaviour::new(0, 0.25, false).unwrap_or_default();
        assert!(b.fails(0.0));
        assert!(b.fails(0.2499));
        assert!(!b.fails(0.25));
        assert!(!Behaviour::default().fails(0.0));
        assert!(Behaviour::new(0, 0.0, true).unwrap_or_default().fails(0.99));
    }
}
