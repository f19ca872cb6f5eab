#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Inventory over real HTTP and real gRPC, on SQLite and (when `BAZAAR_TEST_POSTGRES_URL` is
//! set) on PostgreSQL: every test in a `both!` block runs once per backend.

mod helpers;

mod admin;
mod concurrency;
mod events;
mod ledger;
mod reservations;
mod state;
