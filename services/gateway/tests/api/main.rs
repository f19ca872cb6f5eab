//! Black-box tests: a gateway on a real socket in front of small upstream servers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod cache;
mod config;
mod docs;
mod failures;
mod headers;
mod helpers;
mod limits;
mod ops;
mod overview;
mod pool;
mod rate_limit;
mod routing;
mod shop;
