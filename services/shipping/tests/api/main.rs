#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Shipping over real HTTP, real gRPC and a real event feed, on SQLite and (when
//! `BAZAAR_TEST_POSTGRES_URL` is set) on PostgreSQL.
//!
//! Each test runs a shipping instance against a fake order service: a real messaging
//! producer named `order` (its outbox served as a feed) and a scriptable gRPC `Order` server.

mod helpers;

mod admin;
mod dispatch;
mod faults;
mod leases;
mod state;
