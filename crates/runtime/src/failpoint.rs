//! Failpoints: named places in the code where a test can make the process crash, fail or
//! stall, deterministically, without sleeps or races.
//!
//! They are switched on by `BAZAAR_FAILPOINTS`, a `;`-separated list of `name=action`:
//! `abort` (the process dies at once, like `kill -9`: nothing is flushed or rolled back),
//! `error` (the call site gets an error), `sleep(ms)` (the call site waits). Unset, a
//! failpoint costs one load of an initialised `OnceLock`. `bazaar up` gives the variable to a
//! service's first start only, so a service that aborted at a failpoint comes back without it.
//!
//! ```
//! # fn commit() {}
//! # fn publish() {}
//! commit();
//! bazaar_runtime::failpoint::hit("order.after_commit").ok();
//! publish();
//! ```
//!
//! Why not the `fail` crate: its actions are panics and sleeps; a panic inside a tokio task
//! does not end the process, and the crash tests here need a real process death.

use std::{collections::HashMap, sync::OnceLock, time::Duration};

/// What a failpoint does when hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// End the process immediately.
    Abort,
    /// Return an error to the call site.
    Error,
    /// Wait this long, then carry on.
    Sleep(Duration),
}

/// The error a failpoint set to `error` returns.
#[derive(Debug, thiserror::Error)]
#[error("failpoint {0} injected an error")]
pub struct Injected(pub String);

fn table() -> &'static HashMap<String, Action> {
    static TABLE: OnceLock<HashMap<String, Action>> = OnceLock::new();
    TABLE.get_or_init(|| {
        std::env::var("BAZAAR_FAILPOINTS")
            .map(|spec| parse(&spec))
            .unwrap_or_default()
    })
}

/// Parses `name=action;name=action`; entries that do not parse are ignored with a warning.
pub fn parse(spec: &str) -> HashMap<String, Action> {
    let mut out = HashMap::new();
    for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((name, action)) = entry.split_once('=').filter(|(n, _)| !n.trim().is_empty())
        else {
            tracing::warn!(entry, "Ignoring a failpoint without a name or an action.");
            continue;
        };
        let action = match action.trim() {
            "abort" => Action::Abort,
            "error" => Action::Error,
            a => match a
                .strip_prefix("sleep(")
                .and_then(|r| r.strip_suffix(')'))
                .and_then(|ms| ms.parse::<u64>().ok())
            {
                Some(ms) => Action::Sleep(Duration::from_millis(ms)),
                None => {
                    tracing::warn!(entry, "Ignoring a failpoint with an unknown action.");
                    continue;
                }
            },
        };
        out.insert(name.trim().to_owned(), action);
    }
    out
}

/// Whether any failpoint is configured.
pub fn any() -> bool {
    !table().is_empty()
}

/// Hits the failpoint `name`: aborts, returns [`Injected`], or sleeps (blocking the thread:
/// use [`hit_async`] in async code) as configured; does nothing otherwise.
pub fn hit(name: &str) -> Result<(), Injected> {
    match table().get(name) {
        None => Ok(()),
        Some(Action::Abort) => abort(name),
        Some(Action::Error) => Err(Injected(name.to_owned())),
        Some(Action::Sleep(d)) => {
            std::thread::sleep(*d);
            Ok(())
        }
    }
}

/// [`hit`] for async code: `sleep` yields instead of blocking the thread.
pub async fn hit_async(name: &str) -> Result<(), Injected> {
    match table().get(name) {
        None => Ok(()),
        Some(Action::Abort) => abort(name),
        Some(Action::Error) => Err(Injected(name.to_owned())),
        Some(Action::Sleep(d)) => {
            tokio::time::sleep(*d).await;
            Ok(())
        }
    }
}

fn abort(name: &str) -> ! {
    // Written straight to stderr: the logger may buffer, and nothing after this runs.
    eprintln!("bazaar: failpoint {name} aborts the process");
    std::process::abort()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_actions_and_skips_garbage() {
        let t = parse("a=abort; b=error;c=sleep(25);d=explode;e;=abort");
        assert_eq!(t.get("a"), Some(&Action::Abort));
        assert_eq!(t.get("b"), Some(&Action::Error));
        assert_eq!(t.get("c"), Some(&Action::Sleep(Duration::from_millis(25))));
        assert!(!t.contains_key("d"));
        assert!(!t.contains_key("e"));
        assert_eq!(t.len(), 3, "{t:?}");
    }

    #[test]
    fn an_unset_failpoint_does_nothing() {
        assert!(hit("runtime.test.never-configured").is_ok());
    }
}
