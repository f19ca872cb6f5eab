//! Black-box tests: a real registry on a free port, spoken to over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;
mod instances;
mod leases;
mod validation;
mod watch;
