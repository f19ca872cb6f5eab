#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Black-box system tests: the real `bazaar up` binary, every service its own process, real
//! sockets, a throw-away data directory (SQLite) or PostgreSQL databases.

mod catalog;
mod edge;
mod identity;
mod load;
mod orders;
mod rate_limit;
mod replicas;
mod supervisor;
mod support;
