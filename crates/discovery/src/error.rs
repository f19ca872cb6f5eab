//! The one error type of this crate.

/// Why a call to the registry failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The registry could not be reached or did not answer in time (the caller retries).
    #[error("the registry is unreachable: {}", chain(.0))]
    Unreachable(reqwest::Error),
    /// The registry answered with a status this call does not expect.
    #[error("the registry answered {status}: {detail}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The problem `detail` (or the start of the body).
        detail: String,
    },
    /// The registry's answer could not be read or decoded.
    #[error("the registry sent an unreadable answer: {0}")]
    Decode(String),
    /// The registry base URL cannot be used to build request URLs.
    #[error("the registry URL {0:?} is not a usable http(s) base URL")]
    InvalidUrl(String),
}

impl DiscoveryError {
    /// `true` when the registry could not be reached at all (as opposed to answering badly).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, DiscoveryError::Unreachable(_))
    }
}

/// reqwest's own message says only "error sending request"; the cause (connection refused,
/// timed out) is in the source chain, and that is what an operator needs in the log.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}
