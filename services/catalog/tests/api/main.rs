#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The catalog over real HTTP, on SQLite and (when `BAZAAR_TEST_POSTGRES_URL` is set) on
//! PostgreSQL: every test in the `both!` modules runs once per backend.

mod helpers;

mod auth;
mod listing;
mod products;
mod seed;
mod state;
