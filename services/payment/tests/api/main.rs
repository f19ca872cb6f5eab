#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The payment service over real gRPC and HTTP, in front of a real payment provider
//! stand-in (`bazaar-psp`), on SQLite and (when `BAZAAR_TEST_POSTGRES_URL` is set) on
//! PostgreSQL.

mod helpers;

mod admin;
mod breaker;
mod charge;
mod refund;
mod shipping_failed;
mod state;
