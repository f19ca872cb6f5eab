#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The payment provider stand-in over real HTTP, on SQLite and (when
//! `BAZAAR_TEST_POSTGRES_URL` is set) on PostgreSQL.

mod helpers;

mod admin;
mod charges;
mod refunds;
mod state;
