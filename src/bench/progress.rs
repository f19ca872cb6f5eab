//! One progress line per phase on stderr: rewritten in place on a terminal, printed once
//! when the phase ends otherwise (so logs of a CI run stay readable).

use std::{io::IsTerminal as _, time::Duration};

/// Where progress goes.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    terminal: bool,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// The phase is running: `elapsed` of `total`.
    pub fn update(&self, target: &str, phase: &str, elapsed: Duration, total: Duration) {
        if self.terminal {
            eprint!("\r\x1b[2K{}", line(target, phase, elapsed, total));
        }
    }

    /// The phase ended after `elapsed`, with a short summary of what it found.
    pub fn done(
        &self,
        target: &str,
        phase: &str,
        elapsed: Duration,
        total: Duration,
        summary: &str,
    ) {
        if self.terminal {
            eprint!("\r\x1b[2K");
        }
        eprintln!("{} — {summary}", line(target, phase, elapsed, total));
    }

    /// A line about something other than a timed phase.
    pub fn note(&self, message: &str) {
        eprintln!("bench: {message}");
    }
}

/// `bench: gateway (public route): load 12.0/22.0 s`.
pub fn line(target: &str, phase: &str, elapsed: Duration, total: Duration) -> String {
    format!(
        "bench: {target}: {phase} {:.1}/{:.1} s",
        elapsed.as_secs_f64(),
        total.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_line_names_the_target_the_phase_and_the_time() {
        assert_eq!(
            line(
                "gateway (public route)",
                "load",
                Duration::from_millis(12_040),
                Duration::from_secs(22)
            ),
            "bench: gateway (public route): load 12.0/22.0 s"
        );
    }
}
