//! The payment service provider (PSP) stand-in: an external card processor that Bazaar's
//! payment service calls over plain HTTP, as it would call a real one.
//!
//! It behaves like a provider where it matters for the patterns around it: charges and
//! refunds are remembered by the client's idempotency key (in its own database, so across
//! restarts), the test card token decides the outcome (`tok_declined` declines, `tok_timeout`
//! captures but answers late, any other `tok_…` captures), and an admin can inject latency,
//! a failure rate or a full outage (`PUT /admin/behaviour`). It is not part of the public
//! `/api/v1` surface: the gateway never routes to it.
//!
//! ```no_run
//! # async fn run(verifier: std::sync::Arc<bazaar_auth::Verifier>) -> anyhow::Result<()> {
//! let app = bazaar_psp::build(bazaar_psp::Settings {
//!     addr: "127.0.0.1:0".parse()?,
//!     data_dir: ".bazaar".into(),
//!     database_url: None,
//!     verifier,
//!     timeout_token_delay: bazaar_psp::DEFAULT_TIMEOUT_TOKEN_DELAY,
//! })
//! .await?;
//! app.run_until_stopped(bazaar_runtime::shutdown::signal()).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod domain;
pub mod http;
pub mod state;
pub mod store;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use bazaar_runtime::App;
use bazaar_store::Db;

pub use http::router;
pub use state::AppState;

/// The service name: database name, metric label, registry name.
pub const SERVICE: &str = "psp";

/// How late a `tok_timeout` charge is answered unless told otherwise: longer than the
/// payment service's default 2 s timeout.
pub const DEFAULT_TIMEOUT_TOKEN_DELAY: Duration = Duration::from_secs(3);

/// How to run the processor.
pub struct Settings {
    /// Where to listen (port 0 picks a free port).
    pub addr: SocketAddr,
    /// Where the SQLite database lives when no `database_url` is given.
    pub data_dir: PathBuf,
    /// A database URL template with `{service}` (e.g. PostgreSQL); SQLite in `data_dir` if `None`.
    pub database_url: Option<String>,
    /// Verifies bearer tokens (the admin endpoints need an admin).
    pub verifier: Arc<bazaar_auth::Verifier>,
    /// How long a `tok_timeout` charge waits, after being recorded, before it is answered.
    pub timeout_token_delay: Duration,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("addr", &self.addr)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(bazaar_store::redact),
            )
            .field("timeout_token_delay", &self.timeout_token_delay)
            .finish_non_exhaustive()
    }
}

/// Opens and migrates the database and binds the listener: the returned app is ready to
/// [`App::run_until_stopped`].
pub async fn build(settings: Settings) -> anyhow::Result<App> {
    let db = Db::open_for_service(
        SERVICE,
        &settings.data_dir,
        settings.database_url.as_deref(),
        store::MIGRATIONS,
    )
    .await
    .context("open the psp database")?;
    let state = AppState::new(db, settings.verifier, settings.timeout_token_delay);
    let health = state.health().clone();
    let app = App::bind(settings.addr, router(state))
        .await?
        .with_health(health);
    tracing::info!(addr = %app.local_addr(), "Payment provider stand-in listening.");
    Ok(app)
}
