//! Black-box tests against a real registry on a free loopback port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client;
mod helpers;
mod jwks;
mod registration;
mod resolver;
mod static_resolver;
